"""Background jobs on RQ: queues named by purpose, job functions that take ids."""

from __future__ import annotations

from flask import Flask

from jobs.queues import QUEUE_NAMES, Queues


def init_app(app: Flask) -> None:
    app.extensions["queues"] = Queues(app.extensions["redis"])


__all__ = ["QUEUE_NAMES", "init_app"]
