"""The outbox: pacing and digests within WeCom's per-member limits, quiet hours, transient
failures, and a worker killed between "sending" and "sent"."""

import math
import re
import signal
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.models import AlertKind, DeliveryState, utcnow
from app.services import alerts
from app.services.alerts import digest, outbox, quiet
from app.services.alerts import settings as alert_settings
from app.services.auth import Principal


def _admin(world):
    return Principal(user_id=0, corp_id=world.corp.id, role="admin", staff_id=None)


def _wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_limiter_counts_wecom_windows(app, corp):
    """Does the limiter grant 30 messages a minute to one member and make the 31st wait?"""
    settings = alert_settings.AlertSettings(admin_userids=[], link_base_url="", burst_limit=30, burst_seconds=1)
    assert [digest.acquire(corp.id, "busy-rep", settings) for _ in range(30)] == [0.0] * 30
    wait = digest.acquire(corp.id, "busy-rep", settings)
    assert 55 < wait <= 62
    assert digest.acquire(corp.id, "other-rep", settings) == 0.0


def test_burst_of_100_events_for_one_rep_goes_as_digests_within_limits(world):
    """Do 100 card events for one rep arrive as a few digests, inside WeCom's limits, none dropped?"""
    alert_settings.update(_admin(world), {"burst_limit": 3, "burst_seconds": 2})
    rep = world.rep()
    card, _ = world.card(rep)
    visitors = [world.visitor(f"V{i:03d}") for i in range(100)]
    for wave in range(10):
        for visitor in visitors[wave * 10 : wave * 10 + 10]:
            world.events(visitor, card, ("card_view", 0))
        world.run_jobs()
    world.settle(timeout=30)
    deliveries = world.deliveries()
    assert len(deliveries) == 100 and {d.state for d in deliveries} == {DeliveryState.sent}
    batches = {d.batch_id for d in deliveries}
    summary = world.sim.control.state("messages")["messages"]
    assert summary["dropped"] == 0
    log = world.messages(rep.userid)
    assert len(log) == len(batches) <= 30 and {m["status"] for m in log} == {"delivered"}
    assert any(re.match(r"\d+ alerts: V\d{3}", m["summary"]) for m in log)  # digests of several alerts
    assert any(d.reason == "rate_limit" for d in deliveries)  # and some waited for a slot
    times = sorted(m["at"] for m in log)
    assert all(sum(1 for t in times if s <= t < s + 60) <= 30 for s in times)  # WeCom's limit, as WeCom counts
    # The burst limit (3 per 2 s, counted when we send; arrival jitters a little).
    assert len(times) <= 3 * (math.ceil((times[-1] - times[0]) / 2) + 1)


def test_quiet_hours_defer_and_arrive_as_one_digest(world):
    """Are alerts raised in a rep's quiet hours held, then sent as one digest when they end?"""
    rep = world.rep()
    card, _ = world.card(rep)
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    minute = local.hour * 60 + local.minute
    quiet.update_preference(
        _admin(world), rep.id, {"quiet_hours": {"start": (minute - 60) % 1440, "end": (minute + 60) % 1440}}
    )
    for name in ("Wang", "Li", "Zhao"):
        world.events(world.visitor(name), card, ("card_view", 0))
    world.run_jobs()
    held = world.deliveries()
    assert len(held) == 3 and {(d.state, d.reason) for d in held} == {(DeliveryState.pending, "quiet_hours")}
    assert world.messages(rep.userid) == []
    ends = held[0].not_before
    assert 3500 < (ends - utcnow()).total_seconds() <= 3600
    assert quiet.release_due(now=ends - timedelta(seconds=1)) == 0
    assert quiet.release_due(now=ends + timedelta(seconds=1)) == 3
    world.settle()
    (message,) = world.messages(rep.userid)
    assert message["status"] == "delivered" and message["summary"] == "While you were away: 3 alerts"
    assert len({d.batch_id for d in world.deliveries()}) == 1


def test_transient_failures_retry_and_succeed(world, db):
    """Do 45009, 45033 and a 5xx from message/send retry with backoff until the message goes?"""
    boss = world.rep()
    alert_settings.update(_admin(world), {"admin_userids": [boss.userid]})
    world.sim.control.set_faults(errors=[45009, 45033, 500], times=2, paths=["message/send"])
    alerts.notify_admins(world.corp.id, AlertKind.welcome_failed, "Welcome failed.", dedupe_key="welcome:1")
    db.session.commit()
    world.run_jobs()
    (delivery,) = world.deliveries()
    assert delivery.state == DeliveryState.pending and delivery.reason == "retry" and delivery.not_before
    world.settle(timeout=30)
    (delivery,) = world.deliveries()
    assert delivery.state == DeliveryState.sent and delivery.attempts == 3 and delivery.msgid
    assert [m["status"] for m in world.messages(boss.userid)] == ["delivered"]


def test_worker_killed_between_sending_and_sent_does_not_double_send(world, db, app, worker_process):
    """If the worker dies after WeCom got the message but before "sent" was stored, does the
    restart re-send it so that WeCom's duplicate check drops it (one message, one msgid)?"""
    boss = world.rep()
    alert_settings.update(_admin(world), {"admin_userids": [boss.userid]})
    world.sim.control.set_faults(delay_ms=3000, paths=["message/send"])
    alerts.notify_admins(world.corp.id, AlertKind.welcome_failed, "Welcome failed.", dedupe_key="welcome:9")
    db.session.commit()  # wakes a sender: its job waits in Redis for the worker below
    worker = worker_process()
    try:
        assert _wait_for(lambda: [d.state for d in world.deliveries()] == [DeliveryState.sending], 60), "not claimed"
        # Kill it once its message/send is inside WeCom (the simulator holds it for the delay).
        assert _wait_for(lambda: world.sim.control.state("concurrency")["concurrency"]["in_flight"] >= 1, 30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    # WeCom (the simulator) finishes the call the dead worker made.
    assert _wait_for(lambda: [m["status"] for m in world.messages(boss.userid)] == ["delivered"], 30)
    world.sim.control.clear_faults()
    assert outbox.recover() == 0  # the dead worker's lease is still live
    assert outbox.recover(now=utcnow() + timedelta(seconds=outbox.LEASE_SECONDS + 1)) == 1
    world.settle()
    (delivery,) = world.deliveries()
    first = world.messages(boss.userid)[0]
    assert delivery.state == DeliveryState.sent and delivery.attempts == 2 and delivery.msgid == first["msgid"]
    assert [m["status"] for m in world.messages(boss.userid)] == ["delivered", "duplicate"]
