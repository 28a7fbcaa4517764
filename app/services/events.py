"""The callback event pipeline: store once, process once, retry what is transient, show the rest.

intake (in the HTTP request) → a CallbackEvent row, unique on its dedupe key, and a wake-up;
drain (in a worker)          → claim due events in batches, run each one's handlers and mark it
                               done — the handlers' writes and the "done" commit together, so a
                               crash leaves the event claimable again and never half-applied;
sweep (periodic)             → revive events whose worker died (lease expired) or whose
                               wake-up was lost, and start a drainer for them.

Why drainers and not one RQ job per event: RQ spends ~45 Redis commands on every job, about as
much as handling the event itself. The table is the queue of record; RQ jobs only wake a few
drainers (``EVENT_DRAINERS`` per priority), each working in short slices so that welcome-code
events (priority "high") are never stuck behind a long drain of ordinary ones.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from app.dbutil import insert_ignoring_conflict
from app.extensions import db, get_redis
from app.models import CallbackEvent, EventStatus, utcnow
from app.services import corps
from app.services.event_handlers import UnknownEvent, dispatch, dispatch_batch, prefetch
from jobs.queues import enqueue, queues
from wecom.errors import is_transient
from wecom.events import dedupe_key, event_type

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_SECONDS = (2, 5, 15, 60, 300)
PRIORITIES = ("high", "default")
BATCH_SIZE = 20
# A drainer gives its worker back after this long, so higher-priority jobs get a turn.
SLICE_SECONDS = 2.0
# A drainer's Redis flag outlives a crash by at most this long.
DRAINER_FLAG_TTL = 30
PATHS_KEY = "events:paths"


def priority_of(fields: dict) -> str:
    # A welcome code lives 20 s: such events jump the queue.
    return "high" if fields.get("WelcomeCode") else "default"


def intake(fields: dict[str, str]) -> tuple[int | None, bool]:
    """Store a decrypted callback and wake a drainer. Returns (event id, is_new); a duplicate
    (WeCom's retry) returns (None, False) and has no effect."""
    corp_id = corps.env_corp_id()
    event, change_type = event_type(fields)
    now = utcnow()
    priority = priority_of(fields)
    event_id = insert_ignoring_conflict(
        CallbackEvent,
        {
            "corp_id": corp_id,
            "dedupe_key": dedupe_key(current_app.config["WECOM_CORP_ID"], fields),
            "event": event,
            "change_type": change_type,
            "payload": fields,
            "status": EventStatus.received,
            "priority": priority,
            "attempts": 0,
            "received_at": now,
            "created_at": now,
            "updated_at": now,
        },
        ["corp_id", "dedupe_key"],
        autocommit=True,
    )
    if event_id is None:
        return None, False
    try:
        wake(priority)
    except RedisError:
        # The event is stored: acknowledge it (a 500 would only make WeCom send it again); the
        # sweeper starts a drainer once Redis is back.
        log.exception("could not wake a drainer for event %s; the sweeper will", event_id)
    return event_id, True


def _flag(priority: str, slot: int | str) -> str:
    return f"events:drainer:{priority}:{slot}"


# Take the first free drainer slot of a priority in one round trip (the ack's second-largest
# cost was one SET NX per slot when every slot was busy, which is exactly the case under load).
_TAKE_SLOT = """
for slot = 0, tonumber(ARGV[1]) - 1 do
  if redis.call('SET', KEYS[1] .. slot, 1, 'NX', 'EX', ARGV[2]) then return slot end
end
return -1
"""


def wake(priority: str) -> bool:
    """Start a drainer for ``priority`` unless all its slots are running (they will see the new
    event: a drainer looks once more after giving its slot up). True if one was started."""
    redis = get_redis()
    take = current_app.extensions.get("events_take_slot")
    if take is None:
        take = current_app.extensions["events_take_slot"] = redis.register_script(_TAKE_SLOT)
    slot = int(take(keys=[_flag(priority, "")], args=[current_app.config["EVENT_DRAINERS"], DRAINER_FLAG_TTL]))
    if slot < 0:
        return False
    try:
        enqueue(drain_job, priority, slot, queue=priority)
    except RedisError:
        redis.delete(_flag(priority, slot))
        raise
    return True


def kick(priority: str) -> None:
    """Start a drainer that holds no slot: for recovery, when slot flags may belong to the dead."""
    enqueue(drain_job, priority, None, queue=priority)


def wake_job(priority: str) -> bool:
    """RQ entry point: a retry's backoff has passed."""
    return wake(priority)


def drain_job(priority: str, slot: int | None) -> int:
    """RQ entry point: process due events of ``priority`` for one slice; returns how many."""
    return drain(priority, slot)


def drain(priority: str, slot: int | None) -> int:
    redis = get_redis()
    flag = _flag(priority, slot) if slot is not None else None
    deadline = time.monotonic() + SLICE_SECONDS
    processed = 0
    while True:
        if flag:
            redis.expire(flag, DRAINER_FLAG_TTL)
        batch = _claim_batch(priority)
        if not batch and flag:
            # Give the slot up, then look once more: an event stored before the delete but
            # after our last claim found the slot taken and started no drainer of its own.
            redis.delete(flag)
            flag = None
            batch = _claim_batch(priority)
        if not batch:
            return processed
        with prefetch([row.payload for row in batch]):
            singles = _handle_batch(batch)
            for row in singles:
                _handle(row.id, row.corp_id, dict(row.payload), row.attempts)
        _count(batches=1, batched=len(batch) - len(singles), one_by_one=len(singles))
        processed += len(batch)
        # Yield the worker at the end of the slice, or at once when an urgent job (a welcome,
        # an alert) is waiting behind an ordinary drain.
        if time.monotonic() > deadline or (priority != "high" and queues()["high"].count):
            # Continue in a fresh job (same slot): a waiting higher-priority job goes first.
            enqueue(drain_job, priority, slot if flag else None, queue=priority)
            return processed


def _due(priority: str | None = None):
    cond = (CallbackEvent.status == EventStatus.received) & or_(
        CallbackEvent.next_attempt_at.is_(None), CallbackEvent.next_attempt_at <= utcnow()
    )
    return cond & (CallbackEvent.priority == priority) if priority else cond


def _claim_batch(priority: str) -> list:
    """Take up to BATCH_SIZE due events; concurrent drainers skip each other's rows."""
    ids = (
        select(CallbackEvent.id)
        .where(_due(priority))
        .order_by(CallbackEvent.id)
        .limit(BATCH_SIZE)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = db.session.execute(
        update(CallbackEvent)
        .where(CallbackEvent.id.in_(ids), CallbackEvent.status == EventStatus.received)
        .values(status=EventStatus.processing, attempts=CallbackEvent.attempts + 1, updated_at=utcnow())
        .returning(CallbackEvent.id, CallbackEvent.corp_id, CallbackEvent.payload, CallbackEvent.attempts)
    ).all()
    db.session.commit()
    return sorted(rows, key=lambda r: r.id)


def _claim(event_id: int):
    """Take one event, unless it is done or another worker holds a live lease."""
    lease_expired = utcnow() - timedelta(seconds=current_app.config["EVENT_LEASE_SECONDS"])
    claimed = db.session.execute(
        update(CallbackEvent)
        .where(
            CallbackEvent.id == event_id,
            or_(
                CallbackEvent.status.in_([EventStatus.received, EventStatus.failed]),
                (CallbackEvent.status == EventStatus.processing) & (CallbackEvent.updated_at < lease_expired),
            ),
        )
        .values(status=EventStatus.processing, attempts=CallbackEvent.attempts + 1, updated_at=utcnow())
        .returning(CallbackEvent.id, CallbackEvent.corp_id, CallbackEvent.payload, CallbackEvent.attempts)
    ).first()
    db.session.commit()
    return claimed


def process(event_id: int) -> str:
    """Process one event now, whatever its queue (tools and tests); "skipped" when it is done
    or held by a live worker."""
    claimed = _claim(event_id)
    if claimed is None:
        return "skipped"
    return _handle(claimed.id, claimed.corp_id, dict(claimed.payload), claimed.attempts)


def _finish(event_id: int, status: EventStatus, error: str | None = None) -> None:
    db.session.execute(
        update(CallbackEvent)
        .where(CallbackEvent.id == event_id)
        .values(status=status, last_error=error, processed_at=utcnow(), updated_at=utcnow(), next_attempt_at=None)
    )


def _count(**counts: int) -> None:
    """How many batches were drained, how many of their events went the set-based way and how
    many one by one (``events:paths`` in Redis): a falling share of the set-based way means
    the fast path keeps falling back; small batches mean the drainers outrun the callbacks."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        for path, n in counts.items():
            pipe.hincrby(PATHS_KEY, path, n)
        pipe.execute()
    except RedisError:  # metrics never stop the drain
        log.warning("could not count event paths", exc_info=True)


def path_counts() -> dict[str, int]:
    return {k.decode(): int(v) for k, v in get_redis().hgetall(PATHS_KEY).items()}


def _handle_batch(batch: list) -> list:
    """Process set-based what the dispatch table can (one transaction for all of it, so a
    batch of adds costs a few statements, not a few per event); returns the rows left to
    :func:`_handle` one by one. Any error rolls the whole batch back and leaves every row to
    the one-by-one path, which sorts out which event failed and how."""
    rest = []
    for corp_id in dict.fromkeys(row.corp_id for row in batch):
        rows = [row for row in batch if row.corp_id == corp_id]
        try:
            handled = dispatch_batch(corp_id, [dict(row.payload) for row in rows])
            done = [row.id for row, ok in zip(rows, handled, strict=True) if ok]
            if done:
                db.session.execute(
                    update(CallbackEvent)
                    .where(CallbackEvent.id.in_(done))
                    .values(
                        status=EventStatus.done,
                        last_error=None,
                        processed_at=utcnow(),
                        updated_at=utcnow(),
                        next_attempt_at=None,
                    )
                )
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.info("batch of %d events goes one by one", len(rows), exc_info=True)
            handled = [False] * len(rows)
        rest.extend(row for row, ok in zip(rows, handled, strict=True) if not ok)
    return sorted(rest, key=lambda r: r.id)


def _handle(event_id: int, corp_id: int, fields: dict, attempts: int) -> str:
    """Run the handlers of a claimed event; returns its resulting status."""
    try:
        status = EventStatus.done if dispatch(corp_id, fields) else EventStatus.ignored
        _finish(event_id, status)  # in the handlers' transaction: their writes and "done" or neither
        db.session.commit()
    except UnknownEvent as exc:
        # Recorded and visible, but not "failed": replaying it would change nothing.
        db.session.rollback()
        _finish(event_id, EventStatus.ignored, str(exc))
        db.session.commit()
        log.warning("unknown event", extra={"event_id": event_id, "status": str(exc)})
        return str(EventStatus.ignored)
    except (IntegrityError, OperationalError) as exc:
        # A concurrent worker created the same row (or a lock timed out): run it again soon.
        db.session.rollback()
        return _retry_or_fail(event_id, fields, attempts, exc, transient=True)
    except Exception as exc:
        db.session.rollback()
        return _retry_or_fail(event_id, fields, attempts, exc, transient=is_transient(exc))
    log.info("event processed", extra={"event_id": event_id, "status": str(status)})
    return str(status)


def _retry_or_fail(event_id: int, fields: dict, attempts: int, exc: Exception, transient: bool) -> str:
    error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
    retry = transient and attempts < MAX_ATTEMPTS
    delay = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
    db.session.execute(
        update(CallbackEvent)
        .where(CallbackEvent.id == event_id)
        .values(
            status=EventStatus.received if retry else EventStatus.failed,
            last_error=error,
            updated_at=utcnow(),
            next_attempt_at=utcnow() + timedelta(seconds=delay) if retry else None,
        )
    )
    db.session.commit()
    if retry:
        log.warning("event failed, retrying in %ss", delay, extra={"event_id": event_id, "status": error})
        queues()[priority_of(fields)].enqueue_in(timedelta(seconds=delay), wake_job, priority_of(fields))
        return "retrying"
    log.error("event failed", extra={"event_id": event_id, "status": error})
    return "failed"


def replay(status: EventStatus = EventStatus.failed, event_ids: list[int] | None = None) -> int:
    """Make events (default: every failed one) due again and start drainers. Returns how many."""
    stmt = update(CallbackEvent).where(CallbackEvent.status == status)
    if event_ids:
        stmt = stmt.where(CallbackEvent.id.in_(event_ids))
    count = db.session.execute(
        stmt.values(status=EventStatus.received, next_attempt_at=None, updated_at=utcnow())
    ).rowcount
    db.session.commit()
    for priority in PRIORITIES:
        kick(priority)
    return count


def sweep() -> int:
    """Revive events whose worker died (lease expired) and start drainers for due events that
    have waited too long (their wake-up was lost). Periodic; returns how many it found."""
    cfg = current_app.config
    now = utcnow()
    db.session.execute(
        update(CallbackEvent)
        .where(
            CallbackEvent.status == EventStatus.processing,
            CallbackEvent.updated_at < now - timedelta(seconds=cfg["EVENT_LEASE_SECONDS"]),
        )
        .values(status=EventStatus.received, next_attempt_at=None, updated_at=now)
    )
    db.session.commit()
    waiting = now - timedelta(seconds=cfg["EVENT_SWEEP_AFTER_SECONDS"])
    # updated_at == now: the events just revived above, due at once.
    stale = dict(
        db.session.execute(
            select(CallbackEvent.priority, func.count())
            .where(_due(), or_(CallbackEvent.updated_at < waiting, CallbackEvent.updated_at == now))
            .group_by(CallbackEvent.priority)
        ).all()
    )
    for priority in stale:
        kick(priority)
    return sum(stale.values())
