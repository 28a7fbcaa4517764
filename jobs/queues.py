"""The queues, highest priority first, and the one way to enqueue a job."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from redis import Redis
from rq import Queue, Retry

# high: must land within seconds (welcome messages inside WeCom's 20 s window, alerts);
# default: callback processing; low: sync, reconciliation, reports.
QUEUE_NAMES = ("high", "default", "low")


class Queues:
    def __init__(self, connection: Redis):
        self.connection = connection
        self.by_name = {name: Queue(name, connection=connection) for name in QUEUE_NAMES}

    def __getitem__(self, name: str) -> Queue:
        return self.by_name[name]

    def all(self) -> list[Queue]:
        return [self.by_name[name] for name in QUEUE_NAMES]


def queues() -> Queues:
    return current_app.extensions["queues"]


def enqueue(func: Callable, *args, queue: str = "default", retry: Retry | None = None, **options):
    """Enqueue ``func(*args)`` on a named queue. Pass ids, never ORM objects."""
    return queues()[queue].enqueue(func, *args, retry=retry, **options)
