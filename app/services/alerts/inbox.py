"""The inbox: card activity and intent rises waiting for rule evaluation (a Redis Stream), and
content reads to look at again once their threshold may have passed (a sorted set by due time).

The signals drainer hands each committed cycle's activity over with one XADD and wakes the
alert sender; the sender (a worker job) evaluates what waits here before each claim. So the
card pipeline never waits for alert rules, and a burst of cycles costs one job, not one per
cycle. An entry is deleted only after the alerts it raised are committed: a crash in between
evaluates it again, which raises nothing new (dedupe keys). An entry that fails on its own
(not a database outage) is moved to the dead-letter stream ``alerts:inbox:dead``. Read checks
go the same way: taken when due, removed after their alerts commit, and the sender is woken
when the next one falls due (one scheduled wake-up per second at most, not a job per check).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError

from app.extensions import db, get_redis
from jobs.queues import queues

log = logging.getLogger(__name__)

STREAM = "alerts:inbox"
DEAD_LETTERS = "alerts:inbox:dead"
READ_CHECKS = "alerts:read-checks"
# Bounds the stream if no worker runs for a long time (approximate trimming, oldest first).
MAX_ENTRIES = 200_000
READ_COUNT = 500


def push_activities(items: list[list]) -> None:
    """Queue card activities ``[corp, customer, rep, card, content, type, ms]`` and wake the sender."""
    _push({"a": json.dumps(items, separators=(",", ":"))})


def push_level_change(change_id: int) -> None:
    """Queue a committed intent level change and wake the sender."""
    _push({"l": str(change_id)})


def _push(fields: dict) -> None:
    from app.services.alerts import outbox  # outbox's sender reads this inbox: import at call time

    try:
        get_redis().xadd(STREAM, fields, maxlen=MAX_ENTRIES, approximate=True)
        outbox.wake()
    except RedisError:
        log.exception("could not queue card activity for alert evaluation")


def schedule_read_check(check: list, due: float) -> None:
    """Look at a content read again at ``due`` (epoch seconds)."""
    from app.services.alerts import outbox  # outbox's sender reads this inbox: import at call time

    redis = get_redis()
    redis.zadd(READ_CHECKS, {json.dumps(check, separators=(",", ":")): due})
    second = int(due) + 1
    if redis.set(f"alerts:wake-at:{second}", 1, nx=True, ex=int(max(second - time.time(), 0)) + 60):
        queues()["high"].enqueue_in(timedelta(seconds=max(second - time.time(), 0)), outbox.wake_job)


def oldest_ms() -> int | None:
    """Since when the oldest due work has waited (ms since the epoch), or None when none is due."""
    redis = get_redis()
    first = redis.xrange(STREAM, count=1)
    oldest = int(first[0][0].split(b"-")[0]) if first else None
    due = redis.zrangebyscore(READ_CHECKS, "-inf", time.time(), start=0, num=1, withscores=True)
    if due:
        oldest = min(oldest or 2**62, int(due[0][1] * 1000))
    return oldest


def evaluate_pending() -> int:
    """Evaluate up to READ_COUNT waiting entries and as many due read checks (commits);
    returns how many were taken."""
    redis = get_redis()
    entries = redis.xrange(STREAM, count=READ_COUNT)
    checks = redis.zrangebyscore(READ_CHECKS, "-inf", time.time(), start=0, num=READ_COUNT)
    if entries:
        _isolating(
            entries,
            _evaluate,
            lambda done: redis.xdel(STREAM, *[entry_id for entry_id, _ in done]),
            lambda entry, exc: redis.xadd(DEAD_LETTERS, {**entry[1], b"id": entry[0], b"error": exc}),
        )
    if checks:
        _isolating(
            checks,
            _check,
            lambda done: redis.zrem(READ_CHECKS, *done),
            lambda check, exc: redis.xadd(DEAD_LETTERS, {b"read_check": check, b"error": exc}),
        )
    return len(entries) + len(checks)


def _isolating(items: list, evaluate, remove, dead) -> None:
    """Evaluate ``items`` together and ``remove`` them once committed; when that fails (not for
    a database outage), one by one, and the ones that fail alone go to the dead letters."""
    try:
        evaluate(items)
    except (OperationalError, InterfaceError):
        db.session.rollback()
        raise  # the database is away: the items wait for the next pass
    except Exception:
        db.session.rollback()
        log.exception("evaluating %d inbox items failed; isolating the bad ones", len(items))
        for item in items:
            try:
                evaluate([item])
            except (OperationalError, InterfaceError):
                db.session.rollback()
                raise
            except Exception as exc:
                db.session.rollback()
                dead(item, str(exc)[:1000])
            remove([item])
        return
    remove(items)


def _check(members: list) -> None:
    from app.services.alerts import rules  # rules raise through outbox, which imports this module

    rules.check_reads([json.loads(member) for member in members])
    db.session.commit()


def _evaluate(entries: list) -> None:
    from app.services.alerts import rules  # rules raise through outbox, which imports this module

    activities: list[list] = []
    changes: list[int] = []
    for _, fields in entries:
        if b"a" in fields:
            activities.extend(json.loads(fields[b"a"]))
        elif b"l" in fields:
            changes.append(int(fields[b"l"]))
    if activities:
        rules.evaluate_activities(activities)
    for change_id in changes:
        rules.evaluate_level_change(change_id)
    db.session.commit()
