"""A worker process killed in the middle of an event: the event is processed exactly once."""

import signal
import time

from app.models import CallbackEvent, Customer, EventStatus, FollowRelation
from app.services import events
from wecom.client import contact_client


def _wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_worker_killed_mid_job_processes_the_event_once(app, db, sim, run_jobs, worker_process):
    """If the worker dies while handling an event, is it processed exactly once after restart?"""
    world = sim.control.seed_demo()
    way = contact_client().external_contact.add_contact_way(type=1, scene=2, state="crash",
                                                            user=[world["users"][0]])["config_id"]
    # The handler's call to WeCom hangs long enough to kill the worker in the middle of it.
    sim.control.set_faults(delay_ms=5000, paths=["externalcontact/get"])
    sim.control.scan(config_id=way, customer={"name": "crash"})
    sim.control.flush_callbacks()

    worker = worker_process()
    try:
        def processing():
            db.session.expire_all()
            return db.session.query(CallbackEvent).one().status == EventStatus.processing

        assert _wait_for(processing), "the worker never picked the event up"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    sim.control.clear_faults()

    # While the dead worker's lease is live, nobody takes the event over.
    assert events.sweep() == 0
    app.config["EVENT_LEASE_SECONDS"] = 0  # the lease has run out
    assert events.sweep() == 1
    run_jobs()
    db.session.expire_all()
    event = db.session.query(CallbackEvent).one()
    assert event.status == EventStatus.done and event.attempts == 2
    assert db.session.query(Customer).filter_by(name="crash").count() == 1
    assert db.session.query(FollowRelation).join(Customer).filter(Customer.name == "crash").count() == 1
