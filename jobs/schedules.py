"""Periodic jobs: a list of definitions, enqueued by whichever worker gets there first.

Every worker runs a small ticker thread; for each definition and each due time slot it takes a
Redis ``SET NX`` lock named after (job, slot), so however many workers run, each slot enqueues
exactly one job, and restarting workers never re-enqueues a slot already done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from croniter import croniter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    func: Callable
    queue: str
    every: int | None = None  # seconds
    cron: str | None = None  # UTC crontab line

    def slot(self, now: float) -> int:
        """The start of the time slot ``now`` falls in (a cron slot is its last fire time)."""
        if self.every:
            return int(now // self.every * self.every)
        return int(croniter(self.cron, now).get_prev(float))


def definitions() -> list[Periodic]:
    from app.services import alerts, contact_codes, events, handover, signals, sync

    return [
        Periodic("events.sweep", events.sweep, "default", every=30),
        # Schedule boundaries and midnight cap resets of contact codes, expiries, stray welcomes.
        Periodic("contact_codes.tick", contact_codes.tick_job, "high", every=60),
        # Safety net of the card event stream (a lost drain job, a crashed drainer's pending batches).
        Periodic("cards.drain", signals.drain_job, "high", every=15),
        # Records intent level falls as scores decay, so stored levels stay true without events.
        Periodic("cards.settle_levels", signals.settle_job, "low", every=300),
        Periodic("wecom.nightly_sync", sync.nightly_sync_job, "low", cron="30 19 * * *"),  # 03:30 Beijing
        # Hand-over steps whose scheduled job was lost; customers of resigned reps the callbacks missed.
        Periodic("handover.sweep", handover.sweep_job, "low", every=60),
        Periodic("handover.reconcile", handover.reconcile_job, "low", every=3600),
        # Alerts deferred by quiet hours go out, one digest per rep, as working hours start.
        Periodic("alerts.release", alerts.quiet.release_job, "high", every=60),
        # Alert batches whose sender died are re-sent (duplicate check on); lost wake-ups are redone.
        Periodic("alerts.recover", alerts.outbox.recover_job, "high", every=30),
    ]


def tick(app, now: float | None = None) -> list[str]:
    """Enqueue every definition whose current slot has not been enqueued yet."""
    now = time.time() if now is None else now
    redis = app.extensions["redis"]
    queues = app.extensions["queues"]
    enqueued = []
    for job in definitions():
        slot = job.slot(now)
        if redis.set(f"periodic:{job.name}:{slot}", 1, nx=True, ex=7 * 24 * 3600):
            queues[job.queue].enqueue(job.func, job_id=f"periodic-{job.name.replace('.', '_')}-{slot}")
            enqueued.append(job.name)
    return enqueued


def start_ticker(app, interval: float = 5.0) -> threading.Thread:
    def loop():
        while True:
            try:
                tick(app)
            except Exception:  # a Redis hiccup must not kill the ticker
                log.exception("periodic tick failed")
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="periodic-ticker", daemon=True)
    thread.start()
    return thread
