"""The callback event pipeline: store once, process once, retry what is transient, show the rest.

intake (in the HTTP request)  → a CallbackEvent row, unique on its dedupe key, then a job;
process (in a worker)         → claim the row, run the handlers, mark it done — the handlers'
                                writes and the "done" commit together, so a crash leaves the
                                event claimable again and never half-applied;
sweep (periodic)              → re-enqueue events whose job was lost (a crash between commit
                                and enqueue, a worker killed mid-job after its lease ran out).
"""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from app.dbutil import insert_ignoring_conflict
from app.extensions import db
from app.models import CallbackEvent, EventStatus, utcnow
from app.services import corps
from app.services.event_handlers import UnknownEvent, dispatch
from jobs.queues import enqueue, queues
from wecom.errors import is_transient
from wecom.events import dedupe_key, event_type

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_SECONDS = (2, 5, 15, 60, 300)


def intake(fields: dict[str, str]) -> tuple[int | None, bool]:
    """Store a decrypted callback and enqueue its processing. Returns (event id, is_new);
    a duplicate (WeCom's retry) returns (None, False) and has no effect."""
    corp_id = corps.env_corp_id()
    event, change_type = event_type(fields)
    event_id = insert_ignoring_conflict(
        CallbackEvent,
        {
            "corp_id": corp_id,
            "dedupe_key": dedupe_key(current_app.config["WECOM_CORP_ID"], fields),
            "event": event,
            "change_type": change_type,
            "payload": fields,
            "status": EventStatus.received,
            "attempts": 0,
            "received_at": utcnow(),
            "created_at": utcnow(),
            "updated_at": utcnow(),
        },
        ["corp_id", "dedupe_key"],
        autocommit=True,
    )
    if event_id is None:
        return None, False
    try:
        _enqueue(event_id, fields)
    except RedisError:
        # The event is stored: acknowledge it (a 500 would only make WeCom send it again) and
        # let the sweeper enqueue it once Redis is back.
        log.exception("could not enqueue event %s; the sweeper will", event_id)
    return event_id, True


def _enqueue(event_id: int, fields: dict, delay: float = 0) -> None:
    # A welcome code lives 20 s: such events jump the queue.
    queue = "high" if fields.get("WelcomeCode") else "default"
    if delay:
        queues()[queue].enqueue_in(timedelta(seconds=delay), process_job, event_id)
    else:
        enqueue(process_job, event_id, queue=queue)


def process_job(event_id: int) -> str:
    """RQ entry point (jobs take ids)."""
    return process(event_id)


def _claim(event_id: int):
    """Take the event for processing, unless it is done or another worker holds a live lease.
    Returns (corp_id, payload, attempts) or None; one statement, committed at once."""
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
        .returning(CallbackEvent.corp_id, CallbackEvent.payload, CallbackEvent.attempts)
    ).first()
    db.session.commit()
    return claimed


def _finish(event_id: int, status: EventStatus, error: str | None = None) -> None:
    db.session.execute(
        update(CallbackEvent)
        .where(CallbackEvent.id == event_id)
        .values(status=status, last_error=error, processed_at=utcnow(), updated_at=utcnow())
    )


def process(event_id: int) -> str:
    """Run the handlers of one event exactly once; returns the event's resulting status."""
    claimed = _claim(event_id)
    if claimed is None:
        return "skipped"
    corp_id, fields, attempts = claimed.corp_id, dict(claimed.payload), claimed.attempts
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
    db.session.execute(
        update(CallbackEvent)
        .where(CallbackEvent.id == event_id)
        .values(status=EventStatus.received if retry else EventStatus.failed, last_error=error, updated_at=utcnow())
    )
    db.session.commit()
    if retry:
        delay = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
        log.warning("event failed, retrying", extra={"event_id": event_id, "status": error})
        _enqueue(event_id, fields, delay=delay)
        return "retrying"
    log.error("event failed", extra={"event_id": event_id, "status": error})
    return "failed"


def replay(status: EventStatus = EventStatus.failed, event_ids: list[int] | None = None) -> int:
    """Re-enqueue events (default: every failed one). Returns how many."""
    stmt = select(CallbackEvent.id, CallbackEvent.payload).where(CallbackEvent.status == status)
    if event_ids:
        stmt = stmt.where(CallbackEvent.id.in_(event_ids))
    rows = db.session.execute(stmt).all()
    for event_id, payload in rows:
        _enqueue(event_id, payload)
    return len(rows)


def sweep() -> int:
    """Re-enqueue events whose job never ran or died with its worker. Periodic."""
    cfg = current_app.config
    now = utcnow()
    never_ran = now - timedelta(seconds=cfg["EVENT_SWEEP_AFTER_SECONDS"])
    # A retry waits in RQ's scheduler for up to the longest backoff; only after that is it lost.
    retry_lost = never_ran - timedelta(seconds=BACKOFF_SECONDS[-1])
    lease_expired = now - timedelta(seconds=cfg["EVENT_LEASE_SECONDS"])
    received = CallbackEvent.status == EventStatus.received
    rows = db.session.execute(
        select(CallbackEvent.id, CallbackEvent.payload)
        .where(
            or_(
                received & (CallbackEvent.attempts == 0) & (CallbackEvent.updated_at < never_ran),
                received & (CallbackEvent.updated_at < retry_lost),
                (CallbackEvent.status == EventStatus.processing) & (CallbackEvent.updated_at < lease_expired),
            )
        )
        .limit(1000)
    ).all()
    for event_id, payload in rows:
        _enqueue(event_id, payload)
    return len(rows)
