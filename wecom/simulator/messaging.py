"""App messages (message/send) with WeCom's per-member limits and duplicate check.

Past 30 messages a minute or 1000 an hour to one member, WeCom still answers errcode 0 but
drops the message silently. The simulator does the same, and records the drop so tests can
prove an app never loses a notification.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from .directory import subtree
from .entities import SentMessage
from .errors import ApiError, invalid

if TYPE_CHECKING:
    from .world import World

MAX_USERS = 1000
DEFAULT_DUP_INTERVAL = 1800
MAX_DUP_INTERVAL = 4 * 3600


def _size(value) -> int:
    return len(str(value or "").encode("utf-8"))


def _validate(msgtype: str, content: dict) -> str:
    """Check one message body; return a short summary for the record."""
    if msgtype in ("text", "markdown"):
        text = content.get("content")
        if not text:
            raise ApiError(44004)
        if _size(text) > 2048:
            raise ApiError(45002, f"{msgtype}.content longer than 2048 bytes")
        return str(text)[:80]
    if msgtype == "textcard":
        if not content.get("title"):
            raise ApiError(41016)
        if not content.get("description"):
            raise ApiError(41033)
        if not content.get("url"):
            raise ApiError(41010)
        if _size(content["title"]) > 128:
            raise ApiError(45002, "textcard.title longer than 128 bytes")
        if _size(content["description"]) > 512:
            raise ApiError(45002, "textcard.description longer than 512 bytes")
        if len(str(content.get("btntxt") or "")) > 4:
            raise ApiError(45002, "textcard.btntxt longer than 4 characters")
        return str(content["title"])[:80]
    if msgtype == "miniprogram_notice":
        if not content.get("appid"):
            raise invalid("miniprogram_notice.appid required")
        if not content.get("title"):
            raise ApiError(41016)
        if len(content.get("content_item") or []) > 10:
            raise invalid("miniprogram_notice.content_item holds at most 10 items")
        return str(content["title"])[:80]
    raise ApiError(40008, f"msgtype not supported: {msgtype}")


def _recipients(world: World, body: dict) -> tuple[list[str], list[str], list[str], list[str]]:
    """(valid userids, invalid users, invalid parties, invalid tags)."""
    touser = [u for u in str(body.get("touser") or "").split("|") if u]
    toparty = [p for p in str(body.get("toparty") or "").split("|") if p]
    totag = [t for t in str(body.get("totag") or "").split("|") if t]
    if not (touser or toparty or totag):
        raise ApiError(81013)
    if len(touser) > MAX_USERS:
        raise ApiError(40032)
    active = {u.userid: u for u in world.users.values() if u.active}
    if touser == ["@all"]:
        valid, bad_users = sorted(active), []
    else:
        valid = [u for u in dict.fromkeys(touser) if u in active]
        bad_users = [u for u in touser if u not in active]
    bad_parties = []
    for party in toparty:
        if not party.isdigit() or int(party) not in world.departments:
            bad_parties.append(party)
            continue
        departments = set(subtree(world, int(party)))
        valid.extend(
            u.userid
            for u in active.values()
            if departments.intersection(u.department) and u.userid not in valid
        )
    # The simulated directory has no member tags: every tag is invalid.
    return valid, bad_users, bad_parties, list(totag)


def send(world: World, body: dict) -> dict:
    """message/send."""
    agentid = body.get("agentid")
    if agentid in (None, ""):
        raise ApiError(41011)
    if str(agentid) != str(world.config.agent_id):
        raise ApiError(40056)
    msgtype = body.get("msgtype")
    content = body.get(msgtype) if isinstance(msgtype, str) else None
    if not isinstance(content, dict):
        raise ApiError(40008, f"invalid msgtype or missing {msgtype} body")
    summary = _validate(msgtype, content)
    valid, bad_users, bad_parties, bad_tags = _recipients(world, body)
    result = {
        "invaliduser": "|".join(bad_users),
        "invalidparty": "|".join(bad_parties),
        "invalidtag": "|".join(bad_tags),
        "unlicenseduser": "",
    }
    if not valid:
        raise ApiError(81013, **result)
    now = world.now()
    interval = 0
    if body.get("enable_duplicate_check"):
        interval = min(int(body.get("duplicate_check_interval") or DEFAULT_DUP_INTERVAL), MAX_DUP_INTERVAL)
    digest = hashlib.sha256(json.dumps([msgtype, content], sort_keys=True).encode()).hexdigest()
    msgid = world.new_secret(40)
    previous_ids = []
    delivered_any = False
    for userid in valid:
        previous = world.dup_index.get((userid, digest))
        if interval and previous and now - previous[0] < interval:
            world.messages.append(SentMessage(previous[1], userid, msgtype, summary, now, "duplicate"))
            previous_ids.append(previous[1])
            continue
        status = "delivered" if _within_limits(world, userid, now) else "dropped"
        world.messages.append(SentMessage(msgid, userid, msgtype, summary, now, status))
        delivered_any = True
        if status == "delivered":
            world.dup_index[(userid, digest)] = (now, msgid)
    # A message that was a duplicate for every recipient keeps its first msgid.
    result["msgid"] = msgid if delivered_any or not previous_ids else previous_ids[0]
    return result


def _within_limits(world: World, userid: str, now: float) -> bool:
    """Count a delivery against the member's minute and hour windows (sim time); False if over."""
    window = world.msg_windows[userid]
    while window and now - window[0] >= 3600:
        window.popleft()
    last_minute = sum(1 for t in window if now - t < 60)
    if last_minute >= world.config.msg_per_minute or len(window) >= world.config.msg_per_hour:
        return False
    window.append(now)
    return True


def summary(world: World) -> dict:
    """Per member: delivered, dropped and duplicate counts."""
    per_user: dict[str, dict[str, int]] = {}
    for message in world.messages:
        counts = per_user.setdefault(message.userid, {"delivered": 0, "dropped": 0, "duplicate": 0})
        counts[message.status] += 1
    totals = {k: sum(c[k] for c in per_user.values()) for k in ("delivered", "dropped", "duplicate")}
    return {"per_user": per_user, **totals}
