"""Reading transfer results back from WeCom (transfer_result / resigned/transfer_result).

WeCom lists, per (handover rep, takeover rep), the latest transfer of each customer, oldest
request first, a page at a time behind an opaque cursor. A poll walks the pages of every taker
with customers in flight and applies what it reads: 1 done, 2 waiting, 3 refused, 4 taker at
limit (re-planned to the next rep), 5 no record.

Cursors: the cursor of the first page that still held an unfinished customer is kept, so the
next poll skips the pages whose customers are all final. A pass that started there and missed
one of our customers falls back to a full pass next time; only a full pass may conclude that
WeCom has no record of a customer (a request that never landed is sent again).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from sqlalchemy import select
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import HandoverItem, HandoverKind, ItemState
from app.models.handover import IN_FLIGHT_STATES
from app.services.contacts import from_timestamp
from app.services.handover.transitions import Step
from wecom.client import contact_client
from wecom.errors import TRANSIENT_ERRCODES

log = logging.getLogger(__name__)

DONE, WAITING, REFUSED, AT_LIMIT, NO_RECORD = 1, 2, 3, 4, 5
INVALID_PARAM = 40058  # e.g. a cursor WeCom no longer accepts
# A final result older than our request belongs to an earlier transfer of the same customer.
OLDER_TRANSFER_MARGIN = timedelta(hours=1)


def _takers(ctx: Step, states) -> list[int]:
    return list(
        db.session.scalars(
            select(HandoverItem.taker_staff_id)
            .where(HandoverItem.handover_id == ctx.handover_id, HandoverItem.state.in_(states))
            .distinct()
            .order_by(HandoverItem.taker_staff_id)
        )
    )


def reconcile_requested(ctx: Step) -> bool:
    """Settle items a dead step left ``requested``: WeCom's answer decides whether the request
    landed (→ waiting/final) or not (→ planned, sent again). False when WeCom is unavailable."""
    return all(_refresh(ctx, taker_id, full=True) for taker_id in _takers(ctx, [ItemState.requested]))


def poll_in_flight(ctx: Step) -> bool:
    """Read the results of every taker with customers in flight. False when WeCom is unavailable."""
    return all(_refresh(ctx, taker_id, full=False) for taker_id in _takers(ctx, IN_FLIGHT_STATES))


def _refresh(ctx: Step, taker_id: int, *, full: bool) -> bool:
    cursors = ctx.runtime.setdefault("cursors", {})
    key = str(taker_id)
    start = "" if full else cursors.get(key, "")
    api = contact_client().transfer
    fetch = api.resigned_transfer_result if ctx.kind == HandoverKind.resigned else api.transfer_result
    taker_userid = ctx.userid(taker_id)
    cursor, resume, seen = start, None, set()
    while True:
        try:
            answer = fetch(ctx.departing_userid, taker_userid, cursor)
        except WeChatClientException as exc:
            if exc.errcode is None or exc.errcode in TRANSIENT_ERRCODES:
                log.warning("transfer_result unavailable for hand-over %s: %s", ctx.handover_id, exc)
                return False
            if exc.errcode == INVALID_PARAM and cursor:
                cursors.pop(key, None)
                return _refresh(ctx, taker_id, full=True)
            log.error("transfer_result refused for hand-over %s taker %s: %s", ctx.handover_id, taker_userid, exc)
            return True
        except requests.RequestException:
            log.warning("transfer_result had no answer for hand-over %s", ctx.handover_id)
            return False
        entries = {e["external_userid"]: e for e in answer.get("customer") or [] if e.get("external_userid")}
        page_open = _apply_page(ctx, taker_id, entries, seen)
        if page_open and resume is None:
            resume = cursor
        ctx.checkpoint()
        cursor = answer.get("next_cursor") or ""
        if not cursor:
            break
    leftover = [
        item
        for item in db.session.scalars(
            select(HandoverItem)
            .where(
                HandoverItem.handover_id == ctx.handover_id,
                HandoverItem.taker_staff_id == taker_id,
                HandoverItem.state.in_(IN_FLIGHT_STATES),
            )
            .with_for_update()
        )
        if item.id not in seen
    ]
    if leftover and start == "":
        for item in leftover:
            _no_record(ctx, item)
    elif leftover:
        resume = ""  # they are behind our resume point (or were moved): read everything next time
    if resume is None and not leftover:
        cursors.pop(key, None)  # every customer of this taker is final
    else:
        cursors[key] = resume or ""
    ctx.checkpoint()
    return True


def _apply_page(ctx: Step, taker_id: int, entries: dict[str, dict], seen: set[int]) -> bool:
    """Apply one page; True when a customer of ours on it is still in flight."""
    if not entries:
        return False
    items = db.session.scalars(
        select(HandoverItem)
        .where(
            HandoverItem.handover_id == ctx.handover_id,
            HandoverItem.taker_staff_id == taker_id,
            HandoverItem.state.in_(IN_FLIGHT_STATES),
            HandoverItem.external_userid.in_(list(entries)),
        )
        .with_for_update()
    ).all()
    done: list = []
    for item in items:
        if _apply(ctx, item, entries[item.external_userid], done):
            seen.add(item.id)
    ctx.complete(done)
    return any(item.state in IN_FLIGHT_STATES for item in items)


def _apply(ctx: Step, item: HandoverItem, entry: dict, done: list) -> bool:
    """Apply one result; False when it describes an older transfer, not ours."""
    status = int(entry.get("status") or 0)
    at = from_timestamp(entry.get("takeover_time"))
    if (
        item.state == ItemState.requested
        and status in (DONE, REFUSED, AT_LIMIT)
        and item.requested_at is not None
        and at < item.requested_at - OLDER_TRANSFER_MARGIN
    ):
        return False
    if status == DONE:
        done.append((item, at))
    elif status == WAITING:
        item.takeover_at = at
        if item.state == ItemState.requested:
            ctx.set_state(item, ItemState.waiting, note="WeCom has the request")
    elif status == REFUSED:
        ctx.set_state(item, ItemState.refused, note="customer_refused")
    elif status == AT_LIMIT:
        ctx.mark_full(item.taker_staff_id)
        ctx.replan(item, errcode=None, note="customer_limit_exceed")
    elif status == NO_RECORD:
        _no_record(ctx, item)
    else:
        log.warning("unknown transfer status %s for %s", status, item.external_userid)
    return True


def _no_record(ctx: Step, item: HandoverItem) -> None:
    if item.state == ItemState.requested:
        ctx.set_state(item, ItemState.planned, note="WeCom has no record of the request; sending it again")
    else:
        ctx.set_state(item, ItemState.failed, errcode=None, note="WeCom has no record of the transfer")
