"""The worker: ``python -m jobs.worker [--burst] [--queues high,default,low]``.

Jobs run in the worker process itself (no fork per job), inside an app context, so the
database pool and Redis connection are reused from job to job; that is what makes hundreds of
callback events a second possible. The session is cleaned after every job.
"""

from __future__ import annotations

import argparse
import logging

from rq import SimpleWorker

from jobs.queues import QUEUE_NAMES

log = logging.getLogger(__name__)


class AppWorker(SimpleWorker):
    """An RQ worker that runs every job inside the Flask app context."""

    flask_app = None

    def perform_job(self, job, queue, execution):
        from app.extensions import db

        with self.flask_app.app_context():
            try:
                return super().perform_job(job, queue, execution)
            finally:
                db.session.remove()


def build_worker(app, queue_names=QUEUE_NAMES) -> AppWorker:
    queues = app.extensions["queues"]
    worker = AppWorker([queues[name] for name in queue_names], connection=queues.connection)
    worker.flask_app = app
    return worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="drain the queues, then exit")
    parser.add_argument("--queues", default=",".join(QUEUE_NAMES))
    args = parser.parse_args(argv)

    from app import create_app
    from jobs.schedules import start_ticker

    app = create_app()
    worker = build_worker(app, args.queues.split(","))
    if not args.burst:
        start_ticker(app)
    with app.app_context():
        worker.work(burst=args.burst, with_scheduler=True, logging_level=app.config["LOG_LEVEL"])


if __name__ == "__main__":
    main()
