"""transfer_result polling: paginated with cursors, resumed past final pages, scheduled with
backoff, and re-enqueued by the sweeper when a scheduled step is lost."""

from datetime import UTC, timedelta

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from app.models import Handover, HandoverItem, HandoverKind, utcnow
from app.services import handover
from jobs.queues import enqueue
from wecom.client import call_stats

from .conftest import DAY

RESULT = "externalcontact/resigned/transfer_result"


def _result_calls(app) -> int:
    return int(call_stats(app.extensions["redis"]).get(RESULT, {}).get("count", 0))


def test_polls_resume_at_the_first_unfinished_page(world, app, client, admin_headers):
    """With 2 results a page, does a poll walk every page once, then resume from the first page
    that still has a customer in flight, and forget the cursor once all are final?"""
    world.control.config(transfer_page_size=2)
    client.put("/api/v1/handovers/policy", json={"successors": {"zhangwei": "lina"}}, headers=admin_headers)
    world.give("zhangwei", 5)
    world.control.resign_user("zhangwei")
    world.settle()
    found = world.handover(kind=HandoverKind.resigned)
    ordered = world.db.session.scalars(
        select(HandoverItem).where(HandoverItem.handover_id == found.id).order_by(HandoverItem.id)
    ).all()
    assert len(ordered) == 6 and {i.state for i in ordered} == {"waiting"}
    for item in ordered[:2]:  # the first page of results
        world.control.refuse_transfer(item.external_userid)
    world.settle()

    before = _result_calls(app)
    world.run(found.id)
    assert _result_calls(app) - before == 3  # no cursor yet: every page
    cursor = world.handover(id=found.id).runtime["cursors"][str(world.staff("lina").id)]
    assert cursor  # the second page's

    before = _result_calls(app)
    world.run(found.id)
    assert _result_calls(app) - before == 2

    world.control.advance(DAY + 60, wait=True)
    world.run(found.id)
    states = [s for s in world.states(found.id).values()]
    assert states.count("refused") == 2 and states.count("done") == 4
    assert world.handover(id=found.id).runtime["cursors"] == {}


def test_next_poll_is_scheduled_with_backoff_and_swept_when_lost(world, app):
    """After the requests, is the first poll scheduled a minute out, does an unchanged poll back
    off, and does the sweeper run a step whose scheduled job was lost?"""
    world.give("lina", 1)
    world.control.resign_user("lina")
    world.settle()
    found = world.handover(kind=HandoverKind.resigned)
    assert abs((found.next_poll_at - utcnow()) - timedelta(seconds=60)) < timedelta(seconds=10)
    registry = ScheduledJobRegistry(queue=app.extensions["queues"]["low"])
    [job_id] = registry.get_job_ids()
    assert app.extensions["queues"]["low"].fetch_job(job_id).args == (found.id,)

    world.run(found.id)  # nothing changed: the next poll backs off
    found = world.handover(id=found.id)
    assert found.poll_attempt == 1
    assert abs((found.next_poll_at - utcnow()) - timedelta(seconds=300)) < timedelta(seconds=10)

    # The scheduled job is lost and the step is overdue: the sweeper steps in.
    for job_id in registry.get_job_ids():
        registry.remove(job_id)
    world.db.session.execute(
        update(Handover).values(
            next_step_at=utcnow() - timedelta(minutes=5), next_poll_at=utcnow() - timedelta(minutes=5)
        )
    )
    world.db.session.commit()
    world.control.advance(DAY + 60, wait=True)
    swept = enqueue(handover.sweep_job, queue="low")
    world.run_jobs()
    assert swept.return_value() == 1
    assert set(world.states(found.id).values()) == {"done"}
    assert world.handover(id=found.id).status == "finished"


def test_a_rate_limited_poll_waits_instead_of_spinning(world, app):
    """When transfer_result answers 45009 on an overdue poll, is the next step put off by WeCom's
    pause rather than run again at once?"""
    world.give("lina", 1)
    world.control.resign_user("lina")
    world.settle()
    found = world.handover(kind=HandoverKind.resigned)
    world.db.session.execute(update(Handover).values(next_poll_at=utcnow() - timedelta(minutes=1)))
    world.db.session.commit()
    world.control.set_faults(rate=1.0, errors=[45009], paths=[RESULT], times=1)
    world.run(found.id)
    found = world.handover(id=found.id)
    assert set(world.states(found.id).values()) == {"waiting"}
    assert timedelta(seconds=50) < found.next_step_at - utcnow() <= timedelta(seconds=60)
    assert app.extensions["queues"]["low"].count == 0  # nothing queued to run right away


def test_a_step_is_never_scheduled_before_it_is_due(app):
    """RQ keeps scheduled times in whole seconds: is a step due in 0.4 s still scheduled at or
    after its due time (an early step polls nothing and leaves the hand-over to the sweeper)?"""
    from app.services.handover.execute import _schedule_step

    due = utcnow() + timedelta(seconds=0.4)
    _schedule_step(12345, due)
    registry = ScheduledJobRegistry(queue=app.extensions["queues"]["low"])
    (job_id,) = registry.get_job_ids()
    assert registry.get_scheduled_time(job_id).replace(tzinfo=UTC) >= due.replace(tzinfo=UTC)
