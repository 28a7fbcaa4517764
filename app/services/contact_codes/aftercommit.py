"""Run Redis-side follow-ups once the current transaction has committed, never if it rolls back.

Event handlers run inside the event's transaction: a job enqueued from there could start before
the rows it needs are visible (another worker picks it up at once), or run for an event whose
transaction then fails. Deferring the enqueue to ``after_commit`` closes both gaps. A crash
between commit and enqueue loses the job; the periodic sweep picks up what it would have done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db
from jobs.queues import enqueue

log = logging.getLogger(__name__)

_KEY = "contact_codes_after_commit"


def after_commit(func: Callable, *args) -> None:
    """Call ``func(*args)`` when the session's transaction commits (once, however often asked)."""
    pending = db.session().info.setdefault(_KEY, [])
    if (func, args) not in pending:
        pending.append((func, args))


def _enqueue(func: Callable, args: tuple, queue: str, at_front: bool) -> None:
    enqueue(func, *args, queue=queue, at_front=at_front)


def enqueue_after_commit(func: Callable, *args, queue: str = "default", at_front: bool = False) -> None:
    """Enqueue ``func(*args)`` on ``queue`` when the session's transaction commits; ``at_front``
    puts it ahead of the jobs already waiting (a welcome must not queue behind a backlog)."""
    after_commit(_enqueue, func, args, queue, at_front)


@event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    for func, args in session.info.pop(_KEY, []):
        try:
            func(*args)
        except RedisError:
            log.exception("after-commit %s%s failed; the periodic tick catches up", func.__name__, args)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_KEY, None)
