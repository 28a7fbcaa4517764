"""The inbox: card activity and intent rises waiting for rule evaluation, in a Redis Stream.

The signals drainer hands each committed cycle's activity over with one XADD and wakes the
alert sender; the sender (a worker job) evaluates what waits here before each claim. So the
card pipeline never waits for alert rules, and a burst of cycles costs one job, not one per
cycle. An entry is deleted only after the alerts it raised are committed: a crash in between
evaluates it again, which raises nothing new (dedupe keys). An entry that fails on its own
(not a database outage) is moved to the dead-letter stream ``alerts:inbox:dead``.
"""

from __future__ import annotations

import json
import logging

from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError

from app.extensions import db, get_redis

log = logging.getLogger(__name__)

STREAM = "alerts:inbox"
DEAD_LETTERS = "alerts:inbox:dead"
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


def oldest_ms() -> int | None:
    """When the oldest waiting entry was queued (ms since the epoch), or None when empty."""
    first = get_redis().xrange(STREAM, count=1)
    return int(first[0][0].split(b"-")[0]) if first else None


def evaluate_pending() -> int:
    """Evaluate up to READ_COUNT waiting entries (commits); returns how many were taken."""
    entries = get_redis().xrange(STREAM, count=READ_COUNT)
    if not entries:
        return 0
    try:
        _evaluate(entries)
    except (OperationalError, InterfaceError):
        db.session.rollback()
        raise  # the database is away: the entries wait for the next pass
    except Exception:
        db.session.rollback()
        log.exception("evaluating %d inbox entries failed; isolating the bad ones", len(entries))
        for entry in entries:
            try:
                _evaluate([entry])
                get_redis().xdel(STREAM, entry[0])
            except (OperationalError, InterfaceError):
                db.session.rollback()
                raise
            except Exception as exc:
                db.session.rollback()
                entry_id, fields = entry
                get_redis().xadd(DEAD_LETTERS, {**fields, b"id": entry_id, b"error": str(exc)[:1000]})
                get_redis().xdel(STREAM, entry_id)
        return len(entries)
    get_redis().xdel(STREAM, *[entry_id for entry_id, _ in entries])
    return len(entries)


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
