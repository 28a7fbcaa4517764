"""「联系我」contact ways: the channel QR codes and mini-program buttons customers add reps with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .directory import subtree
from .entities import ContactWay, User
from .errors import ApiError, invalid
from .pagination import paginate

if TYPE_CHECKING:
    from .world import World

MAX_USERS = 100
MAX_WAYS = 500_000
TEMP_DEFAULT_EXPIRES = 7 * 86400
TEMP_MAX_EXPIRES = 14 * 86400
LIST_WINDOW = 90 * 86400


def _text(body: dict, key: str, limit: int) -> str:
    value = body.get(key) or ""
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string")
    if len(value) > limit:
        raise invalid(f"{key} longer than {limit} characters")
    return value


def _members(world: World, users: list, parties: list, way_type: int) -> tuple[list[str], list[int]]:
    if not isinstance(users, list) or not isinstance(parties, list):
        raise invalid("user and party must be lists")
    for userid in users:
        world.require_user(userid)
    parties = [int(p) for p in parties]
    for party in parties:
        if party not in world.departments:
            raise ApiError(60123)
    if way_type == 1:
        if len(users) != 1 or parties:
            raise invalid("a single-user way (type 1) needs exactly one user and no party")
    else:
        if not users and not parties:
            raise invalid("user or party required")
        expanded = set(users) | {u.userid for u in _party_users(world, parties)}
        if len(expanded) > MAX_USERS:
            raise invalid(f"at most {MAX_USERS} users (parties expanded)")
    return list(users), parties


def _party_users(world: World, parties: list[int]) -> list[User]:
    departments = {d for p in parties for d in subtree(world, p)}
    return [u for u in world.users.values() if u.active and departments.intersection(u.department)]


def way_users(world: World, way: ContactWay) -> list[User]:
    """Reps a scan can reach: the way's users, then its parties' members; active ones only."""
    seen, result = set(), []
    for user in [world.users.get(u) for u in way.user] + _party_users(world, way.party):
        if user and user.active and user.contact_enabled and user.userid not in seen:
            seen.add(user.userid)
            result.append(user)
    return result


def add(world: World, body: dict, base_url: str) -> dict:
    """externalcontact/add_contact_way."""
    way_type, scene = body.get("type"), body.get("scene")
    if way_type not in (1, 2):
        raise invalid("type must be 1 (single) or 2 (multi)")
    if scene not in (1, 2):
        raise invalid("scene must be 1 (mini-program) or 2 (QR code)")
    if len(world.contact_ways) >= MAX_WAYS:
        raise invalid(f"at most {MAX_WAYS} contact ways per corp")
    users, parties = _members(world, body.get("user") or [], body.get("party") or [], way_type)
    is_temp = bool(body.get("is_temp", False))
    expires_in = chat_expires_in = None
    if is_temp:
        if way_type != 1:
            raise invalid("a temporary way must be single-user")
        expires_in = int(body.get("expires_in") or TEMP_DEFAULT_EXPIRES)
        chat_expires_in = int(body.get("chat_expires_in") or 86400)
        if not 0 < expires_in <= TEMP_MAX_EXPIRES:
            raise invalid("expires_in out of range")
    config_id = world.new_id("", 32, "0123456789abcdef")
    way = ContactWay(
        config_id=config_id,
        type=way_type,
        scene=scene,
        created_at=world.now(),
        style=body.get("style"),
        remark=_text(body, "remark", 30),
        skip_verify=bool(body.get("skip_verify", True)),
        state=_text(body, "state", 30),
        user=users,
        party=parties,
        is_temp=is_temp,
        expires_in=expires_in,
        chat_expires_in=chat_expires_in,
        unionid=body.get("unionid") or "",
        conclusions=body.get("conclusions"),
        qr_code=f"{base_url.rstrip('/')}/qr/{config_id}" if scene == 2 else "",
    )
    world.contact_ways[config_id] = way
    result = {"config_id": config_id}
    if way.qr_code:
        result["qr_code"] = way.qr_code
    return result


def require(world: World, config_id: str | None) -> ContactWay:
    """The way, or 40058 when the config_id is missing or unknown."""
    if not config_id:
        raise invalid("config_id required")
    way = world.contact_ways.get(config_id)
    if way is None:
        raise invalid(f"config_id not found: {config_id}")
    return way


def get(world: World, body: dict) -> dict:
    """externalcontact/get_contact_way."""
    return {"contact_way": require(world, body.get("config_id")).to_api()}


def update(world: World, body: dict) -> dict:
    """externalcontact/update_contact_way: overwrite the fields given, keep the rest."""
    way = require(world, body.get("config_id"))
    changes: dict = {}
    if "remark" in body:
        changes["remark"] = _text(body, "remark", 30)
    if "state" in body:
        changes["state"] = _text(body, "state", 30)
    if "skip_verify" in body:
        changes["skip_verify"] = bool(body["skip_verify"])
    if "style" in body:
        changes["style"] = body["style"]
    if "user" in body or "party" in body:
        users = body["user"] if "user" in body else way.user
        parties = body["party"] if "party" in body else way.party
        changes["user"], changes["party"] = _members(world, users or [], parties or [], way.type)
    if way.is_temp:
        for key in ("expires_in", "chat_expires_in", "unionid", "conclusions"):
            if key in body:
                changes[key] = body[key]
    for key, value in changes.items():
        setattr(way, key, value)
    way.updates += 1
    return {}


def delete(world: World, body: dict) -> dict:
    """externalcontact/del_contact_way."""
    way = require(world, body.get("config_id"))
    del world.contact_ways[way.config_id]
    return {}


def list_ways(world: World, body: dict) -> dict:
    """externalcontact/list_contact_way: ways created in [start_time, end_time] (default the last
    90 days), oldest first, ``limit`` ≤ 1000 (default 100), opaque cursor."""
    now = world.now()
    end = float(body.get("end_time") or now)
    start = float(body.get("start_time") or end - LIST_WINDOW)
    if start > end:
        raise invalid("start_time after end_time")
    limit = int(body.get("limit") or 100)
    if not 0 < limit <= 1000:
        raise invalid("limit must be 1..1000")
    ways = sorted(
        (w for w in world.contact_ways.values() if start <= w.created_at <= end),
        key=lambda w: (w.created_at, w.config_id),
    )
    page, next_cursor = paginate(ways, body.get("cursor"), limit, "contact_way")
    return {"contact_way": [{"config_id": w.config_id} for w in page], "next_cursor": next_cursor}


def find_by_state(world: World, state: str) -> ContactWay | None:
    """The most recent way carrying ``state``."""
    matches = [w for w in world.contact_ways.values() if w.state == state]
    return max(matches, key=lambda w: w.created_at) if matches else None
