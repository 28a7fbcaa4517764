"""Processing stored events with a real worker: handlers that need no WeCom call, statuses,
the sweeper and replay."""

from datetime import timedelta

from sqlalchemy import update

from app.models import CallbackEvent, EventStatus, GroupChat, Staff, StaffStatus, utcnow
from app.services import events
from jobs.schedules import tick
from tests import factories
from tests.wecom.helpers import event_xml, post_event


def _post(client, app, event, change_type="", **fields):
    return post_event(client, app, event_xml(app.config["WECOM_CORP_ID"], event, change_type, **fields))


def test_delete_user_marks_the_rep_resigned(client, app, db, corp, run_jobs):
    """Does change_contact/delete_user mark the rep resigned with the event's time?"""
    factories.staff(corp, userid="lisi")
    _post(client, app, "change_contact", "delete_user", UserID="lisi", CreateTime="1700000000")
    run_jobs()
    rep = db.session.query(Staff).filter_by(userid="lisi").one()
    assert rep.status == StaffStatus.resigned and int(rep.resigned_at.timestamp()) == 1700000000
    assert db.session.query(CallbackEvent).one().status == EventStatus.done


def test_chat_dismiss_marks_the_chat(client, app, db, corp, run_jobs):
    """Does change_external_chat/dismiss mark the group chat dismissed?"""
    _post(client, app, "change_external_chat", "dismiss", ChatId="wr-1")
    run_jobs()
    assert db.session.query(GroupChat).one().status == "dismissed"


def test_unknown_event_is_recorded_not_dropped(client, app, db, corp, run_jobs):
    """Is an event nobody knows kept, marked ignored and explained, instead of failing forever?"""
    _post(client, app, "change_something_new", "whatever", UserID="x")
    run_jobs()
    event = db.session.query(CallbackEvent).one()
    assert event.status == EventStatus.ignored and "unknown event" in event.last_error


def test_known_but_ignored_event(client, app, db, corp, run_jobs):
    """Is a known event no handler acts on marked ignored without an error?"""
    _post(client, app, "change_external_tag", "create", Id="et1", TagType="tag")
    run_jobs()
    event = db.session.query(CallbackEvent).one()
    assert event.status == EventStatus.ignored and event.last_error is None


def test_processing_twice_has_one_effect(client, app, db, corp, run_jobs):
    """Does running the same event's job twice change nothing the second time?"""
    factories.staff(corp, userid="lisi")
    _post(client, app, "change_contact", "delete_user", UserID="lisi")
    run_jobs()
    event = db.session.query(CallbackEvent).one()
    assert events.process(event.id) == "skipped"
    db.session.refresh(event)
    assert event.attempts == 1


def test_sweeper_picks_up_a_lost_job_and_an_abandoned_lease(client, app, db, corp, run_jobs):
    """Are events whose job was lost, or whose worker died mid-job, processed again by the sweeper?"""
    factories.staff(corp, userid="a")
    factories.staff(corp, userid="b")
    _post(client, app, "change_contact", "delete_user", UserID="a")
    _post(client, app, "change_contact", "delete_user", UserID="b")
    for q in app.extensions["queues"].all():
        q.empty()  # the jobs are lost
    long_ago = utcnow() - timedelta(hours=1)
    first, second = db.session.query(CallbackEvent).order_by(CallbackEvent.id).all()
    db.session.execute(update(CallbackEvent).where(CallbackEvent.id == first.id).values(updated_at=long_ago))
    db.session.execute(
        update(CallbackEvent)
        .where(CallbackEvent.id == second.id)
        .values(status=EventStatus.processing, attempts=1, updated_at=long_ago)
    )
    db.session.commit()
    assert events.sweep() == 2
    run_jobs()
    db.session.expire_all()
    assert [e.status for e in db.session.query(CallbackEvent)] == [EventStatus.done, EventStatus.done]
    assert db.session.query(Staff).filter_by(status=StaffStatus.resigned).count() == 2


def test_live_lease_is_not_taken_over(client, app, db, corp):
    """While a worker holds an event's lease, is the event left alone by the sweeper and other jobs?"""
    factories.staff(corp, userid="a")
    _post(client, app, "change_contact", "delete_user", UserID="a")
    db.session.execute(update(CallbackEvent).values(status=EventStatus.processing, updated_at=utcnow()))
    db.session.commit()
    assert events.sweep() == 0
    assert events.process(db.session.query(CallbackEvent).one().id) == "skipped"


def test_replay_reenqueues_failed_events(client, app, db, corp, run_jobs, runner):
    """Does `flask events replay` run failed events again?"""
    factories.staff(corp, userid="a")
    _post(client, app, "change_contact", "delete_user", UserID="a")
    for q in app.extensions["queues"].all():
        q.empty()
    db.session.execute(update(CallbackEvent).values(status=EventStatus.failed, last_error="boom"))
    db.session.commit()
    result = runner.invoke(args=["events", "replay"])
    assert "re-enqueued 1 event" in result.output
    run_jobs()
    db.session.expire_all()
    assert db.session.query(CallbackEvent).one().status == EventStatus.done


def test_periodic_slots_enqueue_once_across_workers(app):
    """However many workers tick, is each periodic slot enqueued exactly once?"""
    now = 1_700_000_000.0
    first = tick(app, now)
    assert "events.sweep" in first
    assert tick(app, now) == []  # a second worker, same slot
    assert "events.sweep" in tick(app, now + 30)  # the next slot of the 30 s job
    assert "events.sweep" not in tick(app, now + 31)  # still that slot
