"""Welcome messages: rendered when the add arrives, sent from an outbox exactly once per
WelcomeCode, on the high queue, inside WeCom's 20 s window.

The outbox row is unique on the welcome code, so callback retries and re-processed events
cannot queue a second send. A committed row wakes a drainer job (at the front of the high
queue; at most ``DRAINERS`` at once) that sends every due row, earliest deadline first, each
locked while WeCom is called, so no two jobs send one row and a burst costs a few jobs, not one
per welcome. Outcomes: sent, expired (41050, or the window closed first), already_chatting
(41051), failed. Transient WeCom errors are retried with a short backoff while the window is
open, never after.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import requests
from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import or_, select
from wechatpy.exceptions import WeChatClientException

from app.dbutil import insert_ignoring_conflict
from app.extensions import db, get_redis
from app.models import ContactCode, ContactCodeWelcome, Customer, Staff, WelcomeStatus, utcnow
from app.schemas.contact_code import PLACEHOLDER
from jobs.queues import enqueue, queues
from wecom.client import contact_client
from wecom.errors import is_transient

from .aftercommit import after_commit
from .cache import CodeView, StaffView

log = logging.getLogger(__name__)

WINDOW_SECONDS = 20
MAX_TEXT_BYTES = 4000
BACKOFF_SECONDS = (1, 2, 4)
EXPIRED, ALREADY_CHATTING = 41050, 41051
DRAINERS = 2
# A drainer gives its worker back after this long (and continues in a fresh job).
SLICE_SECONDS = 2.0
# A drainer's Redis flag outlives a crash by at most this long.
DRAINER_FLAG_TTL = 30

DEFAULT_CARD_PAGE = "pages/card/index?userid={rep_userid}"


def _fill(text: str, values: dict[str, str]) -> str:
    # A regex, not str.format: admin text must never reach attribute lookups.
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _truncate(text: str, limit: int) -> str:
    raw = text.encode()
    return text if len(raw) <= limit else raw[:limit].decode(errors="ignore")


def render(code: ContactCode | CodeView, rep: Staff | StaffView, customer: Customer | None) -> dict:
    """The send_welcome_msg body (without the code) for this rep and customer."""
    welcome = code.welcome or {}
    values = {
        "customer_name": (customer.name if customer else "") or "",
        "rep_name": rep.name or rep.userid,
        "channel": code.channel,
        "code_name": code.name,
        "rep_userid": rep.userid,
    }
    body: dict = {}
    text = _truncate(_fill(welcome.get("text") or "", values), MAX_TEXT_BYTES)
    if text:
        body["text"] = {"content": text}
    attachments = []
    for item in welcome.get("attachments") or []:
        kind = item["type"]
        if kind == "link":
            link = {"title": _fill(item["title"], values), "url": item["url"]}
            link.update({k: item[k] for k in ("picurl", "desc") if item.get(k)})
            attachments.append({"msgtype": "link", "link": link})
        elif kind == "image":
            attachments.append(
                {"msgtype": "image", "image": {k: item[k] for k in ("media_id", "pic_url") if item.get(k)}}
            )
        elif kind == "miniprogram":
            attachments.append(
                {
                    "msgtype": "miniprogram",
                    "miniprogram": {
                        "title": _fill(item["title"], values),
                        "pic_media_id": item["pic_media_id"],
                        "appid": item.get("appid") or current_app.config["MINIPROGRAM_APPID"],
                        # The card page of the rep the customer was given.
                        "page": _fill(item.get("page") or DEFAULT_CARD_PAGE, values),
                    },
                }
            )
    if attachments:
        body["attachments"] = attachments
    return body


def queue(
    code, add_id: int, staff_id: int, rep, customer: Customer | None, welcome_code: str, issued_at: datetime
) -> int | None:
    """Put the welcome in the outbox and have it sent once this transaction commits. None when
    this welcome code is already in the outbox (a retry of the same add)."""
    now = utcnow()
    welcome_id = insert_ignoring_conflict(
        ContactCodeWelcome,
        {
            "corp_id": code.corp_id,
            "code_id": code.id,
            "add_id": add_id,
            "staff_id": staff_id,
            "welcome_code": welcome_code,
            "payload": render(code, rep, customer),
            "status": WelcomeStatus.pending,
            "attempts": 0,
            # WeCom's clock starts at the event; a simulator running ahead must not shrink it.
            "deadline": min(issued_at, now) + timedelta(seconds=WINDOW_SECONDS),
            "created_at": now,
            "updated_at": now,
        },
        ["corp_id", "welcome_code"],
    )
    if welcome_id is not None:
        after_commit(wake)
    return welcome_id


# Called with the welcome row when a welcome ends failed or expired (the customer was never
# greeted), inside the drainer's transaction: hooks must not commit. Alerts tell the admins.
on_welcome_failed: list[Callable[[ContactCodeWelcome], None]] = []


def _outcome(row: ContactCodeWelcome, status: WelcomeStatus, errcode: int | None = None, error: str | None = None):
    row.status, row.errcode, row.last_error, row.updated_at = status, errcode, error, utcnow()
    if status in (WelcomeStatus.failed, WelcomeStatus.expired):
        for hook in on_welcome_failed:
            hook(row)


def _flag(slot: int) -> str:
    return f"contact_code:welcome:drainer:{slot}"


def wake() -> bool:
    """Start a drainer unless every slot runs one (a running drainer sees the new row: it looks
    once more after giving its slot up). True if one was started."""
    redis = get_redis()
    for slot in range(DRAINERS):
        if redis.set(_flag(slot), 1, nx=True, ex=DRAINER_FLAG_TTL):
            try:
                enqueue(drain_job, slot, queue="high", at_front=True)
            except RedisError:
                redis.delete(_flag(slot))
                raise
            return True
    return False


def wake_job() -> bool:
    """RQ entry point: a retry's backoff has passed."""
    return wake()


def _claim(now: datetime, welcome_id: int | None = None) -> ContactCodeWelcome | None:
    """Lock the next due pending welcome (or the one named), skipping rows another job holds."""
    stmt = select(ContactCodeWelcome).where(ContactCodeWelcome.status == WelcomeStatus.pending)
    if welcome_id is not None:
        stmt = stmt.where(ContactCodeWelcome.id == welcome_id)
    else:
        stmt = stmt.where(or_(ContactCodeWelcome.not_before.is_(None), ContactCodeWelcome.not_before <= now)).order_by(
            ContactCodeWelcome.deadline
        )
    return db.session.scalar(stmt.limit(1).with_for_update(skip_locked=True))


def drain(slot: int | None = None) -> int:
    """Send due welcomes until none is left or the slice ends; returns how many were settled."""
    redis = get_redis()
    flag = _flag(slot) if slot is not None else None
    slice_ends = time.monotonic() + SLICE_SECONDS
    settled = 0
    while True:
        if flag:
            redis.expire(flag, DRAINER_FLAG_TTL)
        row = _claim(utcnow())
        if row is None and flag:
            # Give the slot up, then look once more: a row committed after our last claim may
            # have found the slot taken and started no drainer of its own.
            db.session.rollback()
            redis.delete(flag)
            flag = None
            row = _claim(utcnow())
        if row is None:
            db.session.rollback()
            return settled
        _send_locked(row, utcnow())
        settled += 1
        if time.monotonic() > slice_ends:
            # Continue in a fresh job (same slot) so other jobs get the worker in between.
            enqueue(drain_job, slot if flag else None, queue="high", at_front=True)
            return settled


def drain_job(slot: int | None) -> int:
    """RQ entry point (high queue)."""
    return drain(slot)


def send(welcome_id: int, now: datetime | None = None) -> str:
    """Send one pending welcome now (tools, tests); returns its status afterwards ("skipped"
    when another job holds it or it is settled)."""
    row = _claim(now or utcnow(), welcome_id)
    if row is None:
        db.session.rollback()
        return "skipped"
    return _send_locked(row, now or utcnow())


def _send_locked(row: ContactCodeWelcome, now: datetime) -> str:
    """Call WeCom for a locked pending row and record the outcome (committed)."""
    if now >= row.deadline:
        _outcome(row, WelcomeStatus.expired, error="the 20 s window closed before the welcome could be sent")
        db.session.commit()
        return str(WelcomeStatus.expired)
    row.attempts += 1
    retry_in = None
    try:
        contact_client().external_contact.send_welcome_msg({"welcome_code": row.welcome_code, **row.payload})
    except (WeChatClientException, requests.RequestException) as exc:
        errcode = getattr(exc, "errcode", None)
        if errcode == EXPIRED:
            _outcome(row, WelcomeStatus.expired, errcode, "WeCom: the welcome code is invalid or expired")
        elif errcode == ALREADY_CHATTING:
            _outcome(row, WelcomeStatus.already_chatting, errcode, "WeCom: the two are already chatting")
        elif is_transient(exc):
            delay = BACKOFF_SECONDS[min(row.attempts - 1, len(BACKOFF_SECONDS) - 1)]
            if now + timedelta(seconds=delay) < row.deadline:
                row.errcode, row.last_error, row.updated_at = errcode, str(exc)[:500], utcnow()
                row.not_before = now + timedelta(seconds=delay)
                retry_in = delay
            else:
                _outcome(row, WelcomeStatus.failed, errcode, f"transient errors until the window closed: {exc}"[:500])
        else:
            _outcome(row, WelcomeStatus.failed, errcode, str(exc)[:500])
    else:
        _outcome(row, WelcomeStatus.sent)
        row.sent_at = utcnow()
    status = "retrying" if retry_in is not None else str(row.status)
    welcome_id = row.id
    db.session.commit()
    if retry_in is not None:
        queues()["high"].enqueue_in(timedelta(seconds=retry_in), wake_job, at_front=True)
    log.info("welcome %s: %s", welcome_id, status)
    return status


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Settle what fell through: pending welcomes whose window closed become expired; if some
    are still due (their drainer died, a wake-up was lost), a drainer is started for them."""
    now = now or utcnow()
    pending = db.session.scalars(
        select(ContactCodeWelcome)
        .where(ContactCodeWelcome.status == WelcomeStatus.pending)
        .limit(1000)
        .with_for_update(skip_locked=True)  # a row a drainer holds is that drainer's to settle
    ).all()
    result = {"expired": 0, "pending": 0}
    for row in pending:
        if now >= row.deadline:
            _outcome(row, WelcomeStatus.expired, error="the 20 s window closed before the welcome could be sent")
            result["expired"] += 1
        else:
            result["pending"] += 1
    db.session.commit()
    if result["pending"]:
        # Not wake(): the slot flags may belong to a drainer that died; this one holds no slot.
        enqueue(drain_job, None, queue="high", at_front=True)
    return result
