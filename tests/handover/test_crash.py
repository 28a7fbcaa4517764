"""A worker killed in the middle of a hand-over: the resumed run asks WeCom about the batch that
was in flight instead of sending it again, and sends the rest. Nobody is transferred twice."""

import signal
import time
from collections import Counter
from datetime import timedelta

import requests
from sqlalchemy import update

from app.models import Handover, HandoverItem, HandoverKind, ItemState, utcnow
from app.services import handover
from jobs.queues import enqueue


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_worker_killed_mid_handover_transfers_nobody_twice(world, app, worker_process):
    """If the worker dies while a batch's transfer call is in flight, does the resumed hand-over
    find that batch through transfer_result, send the others, and request each customer once?"""
    customers = world.give("zhangwei", 6)
    # The first transfer call hangs: the worker is killed while WeCom is still working on it.
    world.control.set_faults(delay_ms=2000, rate=0, paths=["externalcontact/resigned/transfer_customer"], times=1)
    world.control.resign_user("zhangwei")
    world.control.flush_callbacks()

    worker = worker_process()
    try:

        def in_flight():
            world.db.session.expire_all()
            return world.db.session.query(HandoverItem).filter_by(state=ItemState.requested).count() > 0

        def call_arrived():  # the hanging call has reached WeCom (its one-shot fault is used up)
            return requests.get(f"{world.sim.base_url}/sim/faults", timeout=5).json()["times"] == 0

        assert _wait_for(in_flight), "the worker never sent a batch"
        assert _wait_for(call_arrived), "the call never reached WeCom"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert _wait_for(lambda: len(world.transfers()) > 0), "WeCom never got the call"
    world.control.clear_faults()
    found = world.handover(kind=HandoverKind.resigned)
    states = Counter(world.states(found.id).values())
    assert states["requested"] >= 1 and states["requested"] + states["planned"] == sum(states.values())

    # While the dead worker's lease is live nobody steps in; once it runs out the sweeper does.
    assert handover.step(found.id).status == "busy"
    world.db.session.execute(
        update(Handover).values(
            lease_until=utcnow() - timedelta(seconds=1), next_step_at=utcnow() - timedelta(minutes=5)
        )
    )
    world.db.session.commit()
    enqueue(handover.sweep_job, queue="low")
    world.run_jobs()

    items = world.items(found.id)
    assert set(customers) <= set(items) and {str(i.state) for i in items.values()} == {"waiting"}
    resumed = [i for i in items.values() if "WeCom has the request" in [h["note"] for h in i.history]]
    assert resumed, "the in-flight batch was reconciled through transfer_result"
    sent = Counter(t["external_userid"] for t in world.transfers())
    assert set(sent) == set(items) and set(sent.values()) == {1}
