from app.models import AuditLog
from jobs.queues import QUEUE_NAMES, enqueue, queues


def write_audit(corp_id: int, marker: str) -> int:
    """A job: takes ids, works through services inside the worker's app context."""
    from app.extensions import db
    from app.services import audit

    entry = audit.record(corp_id, "system", "test.job", "corp", corp_id, data={"marker": marker})
    db.session.commit()
    return entry.id


def test_worker_runs_jobs_in_the_app_context(app, db, corp, run_jobs):
    """Does a real RQ worker run an enqueued job against the app's database?"""
    job = enqueue(write_audit, corp.id, "hello", queue="low")
    run_jobs()
    assert job.get_status(refresh=True) == "finished"
    entry = db.session.get(AuditLog, job.return_value())
    assert entry.data == {"marker": "hello"}


def test_queues_are_named_by_purpose(app):
    """Are the queues high, default and low, in priority order?"""
    assert [q.name for q in queues().all()] == list(QUEUE_NAMES) == ["high", "default", "low"]
