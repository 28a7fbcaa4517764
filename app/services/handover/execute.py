"""Running a hand-over: one *step* at a time, each resumable from what is stored.

A step, under the hand-over's lease (one worker at a time; a dead worker's lease runs out):
  1. reconciles items left ``requested`` by a step that died mid-call, through transfer_result
     (never by sending again: the call may have landed);
  2. sends planned items, ≤100 per call and per taker, each batch marked ``requested`` and
     committed *before* its call;
  3. polls transfer_result when the poll is due (backoff while nothing changes);
  4. moves the group chats due today;
  5. finishes the hand-over or schedules its next step.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import (
    Handover,
    HandoverGroupChat,
    HandoverItem,
    HandoverKind,
    HandoverStatus,
    ItemState,
    utcnow,
)
from app.models.handover import ATTENTION_STATES, OPEN_CHAT_STATES, OPEN_ITEM_STATES
from app.services import audit
from app.services.handover import groupchats, poll
from app.services.handover.transitions import Step
from jobs.queues import enqueue, queues
from wecom.apis import MAX_TRANSFER_BATCH
from wecom.client import contact_client
from wecom.errors import TRANSIENT_ERRCODES

log = logging.getLogger(__name__)

QUEUE = "low"
# WeCom blocks an API for 60 s after 45009.
RATE_LIMIT_PAUSE = 60
# A call whose outcome is unknown (timeout, 5xx): look it up through transfer_result soon.
UNKNOWN_OUTCOME_PAUSE = 15
BUSY_RETRY_SECONDS = 5
# The sweeper re-enqueues a step this late (its scheduled job was lost).
SWEEP_GRACE_SECONDS = 60

# Per-customer errcodes of transfer_customer.
IN_PROGRESS = frozenset({40129, 40100})
NOT_ALLOWED = 40128  # two transfers in 90 days
TAKER_AT_LIMIT = 40099
# Whole-call errcodes that mean the taker cannot take anyone: 60111 unknown (or resigned) userid,
# 40003 invalid userid, 40098 not verified (实名认证), 84074 no customer-contact permission.
TAKER_UNAVAILABLE = frozenset({60111, 40003, 40098, 84074})

_AFTER_COMMIT = "handover_steps_after_commit"


def enqueue_after_commit(handover_id: int) -> None:
    """Run a step once the current transaction commits (its rows are visible by then).
    Dropped on rollback; if Redis is down then, the sweeper enqueues it later."""
    db.session.info.setdefault(_AFTER_COMMIT, set()).add(handover_id)


@event.listens_for(Session, "after_commit")
def _enqueue_committed(session: Session) -> None:
    ids = session.info.pop(_AFTER_COMMIT, None)
    for handover_id in sorted(ids or ()):
        try:
            enqueue(advance_job, handover_id, queue=QUEUE)
        except RedisError:
            log.exception("could not enqueue hand-over %s; the sweeper will", handover_id)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


class Lease:
    """The right to run a step of one hand-over, stored on its row so it outlives nobody."""

    def __init__(self, handover_id: int, token: str):
        self.handover_id, self.token = handover_id, token

    @staticmethod
    def seconds() -> int:
        """How long a lease lasts without being extended (HANDOVER_LEASE_SECONDS)."""
        return int(current_app.config["HANDOVER_LEASE_SECONDS"])

    @classmethod
    def claim(cls, handover_id: int) -> Lease | None:
        """Take the lease (committed at once), or None while another worker holds a live one."""
        token, now = uuid.uuid4().hex, utcnow()
        claimed = db.session.execute(
            update(Handover)
            .where(Handover.id == handover_id, or_(Handover.lease_until.is_(None), Handover.lease_until < now))
            .values(lease_until=now + timedelta(seconds=cls.seconds()), lease_owner=token)
            .returning(Handover.id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        db.session.commit()
        return cls(handover_id, token) if claimed else None

    def extend(self) -> None:
        """Push the expiry out again (committed with the caller's next commit)."""
        db.session.execute(
            update(Handover)
            .where(Handover.id == self.handover_id, Handover.lease_owner == self.token)
            .values(lease_until=utcnow() + timedelta(seconds=self.seconds()))
            .execution_options(synchronize_session=False)
        )

    def release(self) -> None:
        """Give the lease up (committed)."""
        db.session.execute(
            update(Handover)
            .where(Handover.id == self.handover_id, Handover.lease_owner == self.token)
            .values(lease_until=None, lease_owner=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


@dataclass
class StepResult:
    """Where a hand-over stands after a step."""

    status: str  # the hand-over's status, or "busy" (another worker holds the lease)
    counts: dict[str, int]
    next_step_at: datetime | None = None  # None: nothing left to do (or not this worker's turn)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def final(self) -> int:
        return sum(n for state, n in self.counts.items() if ItemState(state) not in OPEN_ITEM_STATES)


def item_counts(handover_id: int) -> dict[str, int]:
    """The hand-over's customers per state."""
    rows = db.session.execute(
        select(HandoverItem.state, func.count())
        .where(HandoverItem.handover_id == handover_id)
        .group_by(HandoverItem.state)
    ).all()
    return {str(state): count for state, count in rows}


def chat_counts(handover_id: int) -> dict[str, int]:
    """The hand-over's group chats per state."""
    rows = db.session.execute(
        select(HandoverGroupChat.state, func.count())
        .where(HandoverGroupChat.handover_id == handover_id)
        .group_by(HandoverGroupChat.state)
    ).all()
    return {str(state): count for state, count in rows}


def step(handover_id: int, *, force_poll: bool = False) -> StepResult:
    """Advance one hand-over as far as it can go now; see the module docstring."""
    lease = Lease.claim(handover_id)
    if lease is None:
        return StepResult("busy", item_counts(handover_id))
    try:
        handover = db.session.get(Handover, handover_id)
        if handover.status == HandoverStatus.pending_approval:
            return StepResult(str(handover.status), item_counts(handover_id))
        ctx = Step(handover, lease)
        retry_at = None
        if not poll.reconcile_requested(ctx):
            retry_at = utcnow() + timedelta(seconds=RATE_LIMIT_PAUSE)
        else:
            retry_at = send_planned(ctx)
        polled = False
        due = ctx.handover.next_poll_at
        if retry_at is None and (force_poll or (due is not None and due <= utcnow())):
            polled = poll.poll_in_flight(ctx)
            if not polled:
                retry_at = utcnow() + timedelta(seconds=RATE_LIMIT_PAUSE)
            else:
                retry_at = send_planned(ctx)
        chat_retry = groupchats.run_due(ctx) if ctx.handover.include_group_chats else None
        schedule(ctx, polled=polled, retry_at=min((t for t in (retry_at, chat_retry) if t), default=None))
        db.session.commit()
        handover = ctx.handover
        return StepResult(str(handover.status), item_counts(handover_id), handover.next_step_at)
    except BaseException:
        db.session.rollback()
        raise
    finally:
        lease.release()


def _planned_batch(ctx: Step) -> list[HandoverItem]:
    """Up to 100 planned items of one taker (the taker of the oldest planned item), locked."""
    taker_id = db.session.scalar(
        select(HandoverItem.taker_staff_id)
        .where(HandoverItem.handover_id == ctx.handover_id, HandoverItem.state == ItemState.planned)
        .order_by(HandoverItem.id)
        .limit(1)
    )
    if taker_id is None:
        return []
    return list(
        db.session.scalars(
            select(HandoverItem)
            .where(
                HandoverItem.handover_id == ctx.handover_id,
                HandoverItem.state == ItemState.planned,
                HandoverItem.taker_staff_id == taker_id,
            )
            .order_by(HandoverItem.id)
            .limit(MAX_TRANSFER_BATCH)
            .with_for_update()
        )
    )


def _requested(batch_id: str) -> list[HandoverItem]:
    """The batch's items still as the call left them (a callback may have moved one meanwhile)."""
    return list(
        db.session.scalars(
            select(HandoverItem)
            .where(HandoverItem.batch_id == batch_id, HandoverItem.state == ItemState.requested)
            .order_by(HandoverItem.id)
            .with_for_update()
        )
    )


def send_planned(ctx: Step) -> datetime | None:
    """Request every planned item. Returns when to try again if WeCom stopped us (rate limit,
    an unknown outcome), else None."""
    api = contact_client().transfer
    while ctx.handover.status == HandoverStatus.running:
        batch = _planned_batch(ctx)
        if not batch:
            return None
        taker_id = batch[0].taker_staff_id
        taker = ctx.userid(taker_id)
        batch_id, now = uuid.uuid4().hex, utcnow()
        for item in batch:
            item.batch_id, item.requested_at = batch_id, now
            ctx.set_state(item, ItemState.requested, note=f"batch {batch_id}")
        external_userids = [item.external_userid for item in batch]
        message = ctx.handover.transfer_message or None
        ctx.checkpoint()  # durable before the call: a crash now leaves them "requested", never lost
        try:
            if ctx.kind == HandoverKind.resigned:
                answer = api.resigned_transfer_customer(ctx.departing_userid, taker, external_userids)
            else:
                answer = api.transfer_customer(ctx.departing_userid, taker, external_userids, message)
        except WeChatClientException as exc:
            retry = _call_failed(ctx, _requested(batch_id), taker_id, exc)
            ctx.checkpoint()
            if retry is not None:
                return retry
            continue
        except requests.RequestException:
            log.warning("transfer call for hand-over %s had no answer; reconciling later", ctx.handover_id)
            return utcnow() + timedelta(seconds=UNKNOWN_OUTCOME_PAUSE)
        _apply_answer(ctx, _requested(batch_id), taker_id, answer)
        ctx.checkpoint()
    return None


def _call_failed(ctx: Step, batch: list[HandoverItem], taker_id: int, exc: WeChatClientException) -> datetime | None:
    """The whole call failed. WeCom answered an errcode: the call had no effect."""
    code = exc.errcode
    if code is None:  # an HTTP error: WeCom may or may not have acted; reconcile later
        return utcnow() + timedelta(seconds=UNKNOWN_OUTCOME_PAUSE)
    if code in TRANSIENT_ERRCODES:
        for item in batch:
            ctx.set_state(item, ItemState.planned, errcode=code, note="WeCom busy; sending again later")
        return utcnow() + timedelta(seconds=RATE_LIMIT_PAUSE)
    if code in TAKER_UNAVAILABLE:
        ctx.mark_full(taker_id)
        for item in batch:
            ctx.replan(item, errcode=code, note="taker unavailable")
        return None
    for item in batch:
        ctx.set_state(item, ItemState.failed, errcode=code, note=(exc.errmsg or "transfer refused by WeCom")[:128])
    return None


def _apply_answer(ctx: Step, batch: list[HandoverItem], taker_id: int, answer: dict) -> None:
    codes = {c.get("external_userid"): int(c.get("errcode") or 0) for c in answer.get("customer") or []}
    for item in batch:
        code = codes.get(item.external_userid)
        if code is None:
            continue  # not in the answer: stays requested, reconciled through transfer_result
        if code == 0:
            ctx.set_state(item, ItemState.waiting, note="WeCom accepted the request")
        elif code in IN_PROGRESS:
            ctx.set_state(item, ItemState.waiting, errcode=code, note="already in transfer")
        elif code == NOT_ALLOWED:
            ctx.set_state(item, ItemState.not_allowed, errcode=code, note="transferred twice in 90 days")
        elif code == TAKER_AT_LIMIT:
            ctx.mark_full(taker_id)
            ctx.replan(item, errcode=code, note="taker at contact limit")
        else:
            ctx.set_state(item, ItemState.failed, errcode=code, note="WeCom refused the transfer")


def schedule(ctx: Step, *, polled: bool, retry_at: datetime | None) -> None:
    """Finish the hand-over, or decide (and enqueue) its next step."""
    handover = ctx.handover
    counts = item_counts(ctx.handover_id)
    chats = chat_counts(ctx.handover_id)
    now = utcnow()
    in_flight = counts.get(ItemState.requested, 0) + counts.get(ItemState.waiting, 0)
    if in_flight:
        if polled:
            handover.poll_attempt = 0 if ctx.changed else handover.poll_attempt + 1
            handover.next_poll_at = now + timedelta(seconds=ctx.policy.poll_delay(handover.poll_attempt))
        elif handover.next_poll_at is None:
            handover.poll_attempt = 0
            handover.next_poll_at = now + timedelta(seconds=ctx.policy.poll_delay(0))
    else:
        handover.next_poll_at, handover.poll_attempt = None, 0
    candidates = [handover.next_poll_at]
    if any(chats.get(s, 0) for s in OPEN_CHAT_STATES):
        candidates.append(groupchats.next_due(ctx.handover_id))
    if counts.get(ItemState.planned, 0) and handover.status == HandoverStatus.running:
        candidates.append(now)  # planned while this step ran (a callback's re-plan)
    next_step = min((c for c in candidates if c is not None), default=None)
    if retry_at is not None:  # WeCom asked us to wait: nothing (not even an overdue poll) before then
        next_step = max(next_step or retry_at, retry_at)
    open_items = sum(counts.get(s, 0) for s in OPEN_ITEM_STATES) + sum(chats.get(s, 0) for s in OPEN_CHAT_STATES)
    if ctx.attention:
        audit.record(
            ctx.corp_id,
            "system",
            "handover.needs_attention",
            "handover",
            ctx.handover_id,
            reason=", ".join(f"{n} {state}" for state, n in sorted(ctx.attention.items())),
            data={"new": dict(ctx.attention), "counts": counts},
        )
    if not open_items:
        next_step = None
        if handover.status == HandoverStatus.running:
            handover.status, handover.finished_at = HandoverStatus.finished, now
            attention = {s: counts[s] for s in map(str, ATTENTION_STATES) if counts.get(s)}
            audit.record(
                ctx.corp_id,
                "system",
                "handover.finished",
                "handover",
                ctx.handover_id,
                data={"counts": counts, "group_chats": chats, "needs_attention": attention},
            )
    ctx.save_runtime()
    previous = handover.next_step_at
    handover.next_step_at = next_step
    if next_step is not None and next_step != previous:
        _schedule_step(ctx.handover_id, next_step)


def _schedule_step(handover_id: int, at: datetime) -> None:
    delay = (at - utcnow()).total_seconds()
    if delay <= 0:
        enqueue_after_commit(handover_id)
        return
    # Never early: a step that runs before its poll is due polls nothing and, its next step
    # being unchanged, schedules nothing, leaving the hand-over to the sweeper (minutes). RQ
    # stores scheduled times in whole seconds, rounded down, so round the delay up past that.
    try:
        queues()[QUEUE].enqueue_in(timedelta(seconds=math.ceil(delay) + 1), advance_job, handover_id)
    except RedisError:
        log.exception("could not schedule hand-over %s; the sweeper will", handover_id)


def advance_job(handover_id: int) -> str:
    """RQ entry point: one step of a hand-over (ids in, services do the work)."""
    result = step(handover_id)
    if result.status == "busy":
        queues()[QUEUE].enqueue_in(timedelta(seconds=BUSY_RETRY_SECONDS), advance_job, handover_id)
    return result.status


def sweep() -> int:
    """Re-enqueue steps whose scheduled job was lost (Redis flushed, enqueue failed, a worker
    died holding it). Periodic; a duplicate step only finds the lease taken or nothing to do."""
    now = utcnow()
    overdue = now - timedelta(seconds=SWEEP_GRACE_SECONDS)
    ids = db.session.scalars(
        select(Handover.id).where(
            Handover.status.in_([HandoverStatus.running, HandoverStatus.cancelled]),
            Handover.next_step_at.is_not(None),
            Handover.next_step_at < overdue,
            or_(Handover.lease_until.is_(None), Handover.lease_until < now),
        )
    ).all()
    for handover_id in ids:
        enqueue(advance_job, handover_id, queue=QUEUE)
    return len(ids)


def sweep_job() -> int:
    """Periodic entry point of :func:`sweep`."""
    return sweep()
