"""The departing rep's customer group chats: ``groupchat/transfer`` when they resigned,
``groupchat/onjob_transfer`` otherwise; ≤100 chats a call and ≤300 a day per original owner,
so a rep with more chats is spread over several days (WeCom's days: Beijing midnight).

Chats are planned from our mirror when the hand-over is made; its first step also asks WeCom
(``groupchat/list`` by owner) and adds any chat the mirror missed.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import requests
from sqlalchemy import func, select
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import (
    ChatState,
    GroupChat,
    GroupChatStatus,
    HandoverGroupChat,
    HandoverKind,
    HandoverStatus,
    Staff,
    utcnow,
)
from app.models.handover import OPEN_CHAT_STATES
from app.services import audit
from app.services.handover.policy import ChatPlan, Policy
from app.services.handover.transitions import Step, history_entry
from wecom.apis import MAX_GROUPCHAT_BATCH
from wecom.client import contact_client
from wecom.errors import TRANSIENT_ERRCODES

log = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8))
DAILY_LIMIT_REACHED = 45009
ALREADY_OWNER = 90504
RETRY_SECONDS = 60
UNKNOWN_OUTCOME_SECONDS = 15


def day_start(at: datetime) -> datetime:
    """Midnight (Beijing) of the day ``at`` falls in, as UTC."""
    local = at.astimezone(BEIJING)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def next_day(at: datetime) -> datetime:
    """Midnight (Beijing) after ``at``, as UTC."""
    return day_start(at) + timedelta(days=1)


def _moved_today(corp_id: int, from_userid: str, now: datetime) -> int:
    return db.session.scalar(
        select(func.count()).where(
            HandoverGroupChat.corp_id == corp_id,
            HandoverGroupChat.from_userid == from_userid,
            HandoverGroupChat.state.in_([ChatState.requested, ChatState.done]),
            HandoverGroupChat.requested_at >= day_start(now),
        )
    )


def slots(corp_id: int, from_userid: str, count: int, limit: int, now: datetime) -> list[datetime]:
    """When each of ``count`` new chats of ``from_userid`` may move: today while today's quota
    lasts (counting what is moved or planned already), then the following days at midnight."""
    used: Counter[datetime] = Counter()
    used[day_start(now)] += _moved_today(corp_id, from_userid, now)
    planned = db.session.scalars(
        select(HandoverGroupChat.not_before).where(
            HandoverGroupChat.corp_id == corp_id,
            HandoverGroupChat.from_userid == from_userid,
            HandoverGroupChat.state == ChatState.planned,
        )
    )
    for not_before in planned:
        used[day_start(max(not_before, now))] += 1
    result: list[datetime] = []
    day = day_start(now)
    while len(result) < count:
        room = max(0, limit - used[day])
        result += [max(day, now)] * min(room, count - len(result))
        day = next_day(day)
    return result


def plan_chats(corp_id: int, departing_userid: str, new_owner: Staff | None, policy: Policy) -> list[ChatPlan]:
    """The rep's live group chats (as mirrored) not already on their way, each with its day."""
    in_flight = select(HandoverGroupChat.chat_id).where(
        HandoverGroupChat.corp_id == corp_id,
        HandoverGroupChat.from_userid == departing_userid,
        HandoverGroupChat.state.in_(OPEN_CHAT_STATES),
    )
    rows = db.session.execute(
        select(GroupChat.chat_id, GroupChat.name)
        .where(
            GroupChat.corp_id == corp_id,
            GroupChat.owner_userid == departing_userid,
            GroupChat.status == GroupChatStatus.active,
            GroupChat.chat_id.not_in(in_flight),
        )
        .order_by(GroupChat.id)
    ).all()
    times = slots(corp_id, departing_userid, len(rows), policy.groupchat_daily_limit, utcnow())
    return [ChatPlan(chat_id, name, new_owner, at) for (chat_id, name), at in zip(rows, times, strict=True)]


def chat_row(corp_id: int, handover_id: int, plan: ChatPlan, from_userid: str) -> dict:
    """Insert values of one planned chat (or a failed one when nobody can own it)."""
    now = utcnow()
    state = ChatState.planned if plan.new_owner is not None else ChatState.failed
    note = None if plan.new_owner is not None else "no active rep to own it"
    owner = plan.new_owner.userid if plan.new_owner is not None else None
    return {
        "corp_id": corp_id,
        "handover_id": handover_id,
        "chat_id": plan.chat_id,
        "name": plan.name or "",
        "from_userid": from_userid,
        "new_owner_staff_id": plan.new_owner.id if plan.new_owner is not None else None,
        "state": state,
        "not_before": plan.not_before,
        "reason": note,
        "finished_at": None if plan.new_owner is not None else now,
        "history": [history_entry(state, owner, plan.new_owner.id if plan.new_owner else None, None, note)],
        "created_at": now,
        "updated_at": now,
    }


def next_due(handover_id: int) -> datetime | None:
    """When the hand-over's next planned chat may move (None when none is planned)."""
    return db.session.scalar(
        select(func.min(HandoverGroupChat.not_before)).where(
            HandoverGroupChat.handover_id == handover_id, HandoverGroupChat.state == ChatState.planned
        )
    )


def _set(ctx: Step, chat: HandoverGroupChat, state: ChatState, *, errcode: int | None = None, note: str | None = None):
    chat.state, chat.errcode, chat.reason = state, errcode, note[:128] if note else None
    owner = ctx.userid(chat.new_owner_staff_id)
    chat.history = [*(chat.history or []), history_entry(state, owner, chat.new_owner_staff_id, errcode, note)]
    if state in (ChatState.done, ChatState.failed):
        chat.finished_at = utcnow()
        audit.record(
            ctx.corp_id,
            "system",
            f"handover.groupchat.{state}",
            "group_chat",
            chat.chat_id,
            reason=note,
            data={"handover_id": ctx.handover_id, "from": chat.from_userid, "to": owner, "errcode": errcode},
        )
    if state == ChatState.done:
        db.session.execute(
            GroupChat.__table__.update()
            .where(GroupChat.corp_id == ctx.corp_id, GroupChat.chat_id == chat.chat_id)
            .values(owner_userid=owner, updated_at=utcnow())
        )
    if state == ChatState.failed:
        ctx.attention["group_chat_failed"] += 1


def _discover(ctx: Step) -> bool:
    """Add the rep's chats WeCom knows and the mirror missed. False when WeCom is unavailable."""
    try:
        listed = contact_client().external_contact_group_chat.list_all(
            status_filter=0, owner_userid_list=[ctx.departing_userid], limit=1000
        )
    except WeChatClientException as exc:
        if exc.errcode is None or exc.errcode in TRANSIENT_ERRCODES:
            return False
        log.error("groupchat/list refused for hand-over %s: %s", ctx.handover_id, exc)
        return True
    except requests.RequestException:
        return False
    known = set(
        db.session.scalars(
            select(HandoverGroupChat.chat_id).where(
                HandoverGroupChat.corp_id == ctx.corp_id,
                HandoverGroupChat.from_userid == ctx.departing_userid,
                (HandoverGroupChat.handover_id == ctx.handover_id) | HandoverGroupChat.state.in_(OPEN_CHAT_STATES),
            )
        )
    )
    missing = [c["chat_id"] for c in listed if c.get("chat_id") and c["chat_id"] not in known]
    if not missing:
        return True
    owner_id = ctx.runtime.get("chat_owner_id")
    owner = db.session.get(Staff, owner_id) if owner_id else None
    times = slots(ctx.corp_id, ctx.departing_userid, len(missing), ctx.policy.groupchat_daily_limit, utcnow())
    rows = [
        chat_row(ctx.corp_id, ctx.handover_id, ChatPlan(chat_id, "", owner, at), ctx.departing_userid)
        for chat_id, at in zip(missing, times, strict=True)
    ]
    db.session.execute(HandoverGroupChat.__table__.insert(), rows)
    log.info("hand-over %s: %d group chats found in WeCom only", ctx.handover_id, len(missing))
    return True


def _recover_requested(ctx: Step) -> bool:
    """Chats a dead step left ``requested``: WeCom's current owner says whether the call landed."""
    api = contact_client().external_contact_group_chat
    requested = db.session.scalars(
        select(HandoverGroupChat).where(
            HandoverGroupChat.handover_id == ctx.handover_id, HandoverGroupChat.state == ChatState.requested
        )
    ).all()
    for chat in requested:
        try:
            owner = api.get(chat.chat_id)["group_chat"].get("owner")
        except WeChatClientException as exc:
            if exc.errcode is None or exc.errcode in TRANSIENT_ERRCODES:
                return False
            _set(ctx, chat, ChatState.failed, errcode=exc.errcode, note="group chat not found")
            continue
        except requests.RequestException:
            return False
        if owner == ctx.userid(chat.new_owner_staff_id):
            _set(ctx, chat, ChatState.done, note="transferred")
        else:
            _set(ctx, chat, ChatState.planned, note="WeCom did not move it; sending again")
    ctx.checkpoint()
    return True


def run_due(ctx: Step) -> datetime | None:
    """Move every chat due now, within today's quota (the rest waits for its day). Returns when
    to try again if WeCom stopped us, else None."""
    handover = ctx.handover
    if handover.status == HandoverStatus.running and not ctx.runtime.get("chats_discovered"):
        if not _discover(ctx):
            return utcnow() + timedelta(seconds=RETRY_SECONDS)
        ctx.runtime["chats_discovered"] = True
        ctx.checkpoint()
    if not _recover_requested(ctx):
        return utcnow() + timedelta(seconds=RETRY_SECONDS)
    if ctx.handover.status != HandoverStatus.running:
        return None
    now = utcnow()
    due = db.session.scalars(
        select(HandoverGroupChat)
        .where(
            HandoverGroupChat.handover_id == ctx.handover_id,
            HandoverGroupChat.state == ChatState.planned,
            HandoverGroupChat.not_before <= now,
        )
        .order_by(HandoverGroupChat.new_owner_staff_id, HandoverGroupChat.id)
    ).all()
    quota = ctx.policy.groupchat_daily_limit - _moved_today(ctx.corp_id, ctx.departing_userid, now)
    by_owner: dict[int, list[HandoverGroupChat]] = {}
    for chat in due:
        by_owner.setdefault(chat.new_owner_staff_id, []).append(chat)
    ids_by_owner = {owner: [c.id for c in chats] for owner, chats in by_owner.items()}
    for owner_id, chat_ids in ids_by_owner.items():
        for start in range(0, len(chat_ids), MAX_GROUPCHAT_BATCH):
            batch = [db.session.get(HandoverGroupChat, i) for i in chat_ids[start : start + MAX_GROUPCHAT_BATCH]]
            allowed, overflow = batch[: max(quota, 0)], batch[max(quota, 0) :]
            for chat in overflow:
                chat.not_before = next_day(now)
                _set(ctx, chat, ChatState.planned, note="daily limit reached; moved to the next day")
            if not allowed:
                ctx.checkpoint()
                continue
            retry = _send(ctx, allowed, ctx.userid(owner_id))
            if retry is not None:
                return retry
            quota -= sum(1 for chat in allowed if chat.state == ChatState.done)
    return None


def _send(ctx: Step, chats: list[HandoverGroupChat], new_owner: str) -> datetime | None:
    batch_id, now = uuid.uuid4().hex, utcnow()
    for chat in chats:
        chat.requested_at = now
        _set(ctx, chat, ChatState.requested, note=f"batch {batch_id}")
    ctx.checkpoint()
    api = contact_client().transfer
    chat_ids = [chat.chat_id for chat in chats]
    try:
        if ctx.kind == HandoverKind.resigned:
            answer = api.groupchat_transfer(chat_ids, new_owner)
        else:
            answer = api.groupchat_onjob_transfer(chat_ids, new_owner)
    except WeChatClientException as exc:
        if exc.errcode is None:
            return utcnow() + timedelta(seconds=UNKNOWN_OUTCOME_SECONDS)
        transient = exc.errcode in TRANSIENT_ERRCODES
        for chat in chats:
            if transient:
                _set(ctx, chat, ChatState.planned, errcode=exc.errcode, note="WeCom busy; sending again later")
            else:
                _set(ctx, chat, ChatState.failed, errcode=exc.errcode, note=exc.errmsg or "refused by WeCom")
        ctx.checkpoint()
        return utcnow() + timedelta(seconds=RETRY_SECONDS) if transient else None
    except requests.RequestException:
        return utcnow() + timedelta(seconds=UNKNOWN_OUTCOME_SECONDS)
    failed = {f.get("chat_id"): f for f in answer.get("failed_chat_list") or []}
    for chat in chats:
        failure = failed.get(chat.chat_id)
        code = int(failure.get("errcode") or 0) if failure else 0
        if code == 0:
            _set(ctx, chat, ChatState.done, note="transferred")
        elif code == ALREADY_OWNER:
            _set(ctx, chat, ChatState.done, errcode=code, note="the new owner already owns it")
        elif code == DAILY_LIMIT_REACHED:
            chat.not_before = next_day(utcnow())
            _set(ctx, chat, ChatState.planned, errcode=code, note="WeCom's daily limit; moved to the next day")
        else:
            _set(ctx, chat, ChatState.failed, errcode=code, note=failure.get("errmsg") or "refused by WeCom")
    ctx.checkpoint()
    return None
