"""Alerts from WeCom callbacks (lost customer, failed transfer) and from other features'
failures (notify_admins), through the simulator's real callbacks and message/send."""

from sqlalchemy import select

from app.models import AlertKind, CallbackEvent, DeliveryState
from app.services import alerts, events
from app.services.alerts import settings as alert_settings
from app.services.auth import Principal
from wecom.client import contact_client


def _admins(world, *userids):
    principal = Principal(user_id=0, corp_id=world.corp.id, role="admin", staff_id=None)
    alert_settings.update(principal, {"admin_userids": list(userids)})


def _scan(world, rep, name="Wang"):
    way = contact_client().external_contact.add_contact_way(type=1, scene=2, state="al", user=[rep.userid])
    scan = world.sim.control.scan(config_id=way["config_id"], customer={"name": name})
    world.sim.control.flush_callbacks()
    world.settle()
    return scan


def test_lost_customer_alerts_the_rep_and_the_admins_once(world, db):
    """When a customer deletes the rep (callback delivered twice, event replayed), are the rep
    and the configured admin each told exactly once?"""
    rep, boss = world.rep(), world.rep()
    _admins(world, boss.userid)
    scan = _scan(world, rep, "Wang")
    world.sim.control.set_faults(callback_duplicate_rate=1.0)
    world.sim.control.customer_deletes_rep(scan["external_userid"], rep.userid)
    world.sim.control.flush_callbacks()
    world.settle()
    event = db.session.scalar(select(CallbackEvent).where(CallbackEvent.change_type == "del_follow_user"))
    assert events.replay(status=event.status, event_ids=[event.id]) == 1
    world.settle()
    (alert,) = world.alerts(kind=AlertKind.lost_customer)
    assert "Wang" in alert.title and alert.staff_id == rep.id and alert.customer_id is not None
    assert {(d.userid, d.role, d.state) for d in alert.deliveries} == {
        (rep.userid, "rep", DeliveryState.sent),
        (boss.userid, "admin", DeliveryState.sent),
    }
    assert [m["status"] for m in world.messages(rep.userid)] == ["delivered"]
    assert [m["status"] for m in world.messages(boss.userid)] == ["delivered"]


def test_lost_customer_alert_is_on_the_customer_timeline(world, client, admin_headers):
    """Does the lost-customer alert show on the customer's timeline?"""
    rep = world.rep()
    scan = _scan(world, rep)
    world.sim.control.customer_deletes_rep(scan["external_userid"], rep.userid)
    world.sim.control.flush_callbacks()
    world.settle()
    (alert,) = world.alerts(kind=AlertKind.lost_customer)
    timeline = client.get(f"/api/v1/customers/{alert.customer_id}/timeline", headers=admin_headers).json
    entries = [e for e in timeline["items"] if e["ref_type"] == "alert"]
    assert [(e["kind"], e["ref_id"]) for e in entries] == [("alert.lost_customer", alert.id)]


def test_refused_transfer_tells_the_admins(world):
    """When a customer refuses a transfer (transfer_fail), are the admins told why?"""
    old, new, boss = world.rep(), world.rep(), world.rep()
    _admins(world, boss.userid)
    scan = _scan(world, old, "Sun")
    contact_client().transfer.transfer_customer(old.userid, new.userid, [scan["external_userid"]])
    world.sim.control.refuse_transfer(scan["external_userid"])
    world.sim.control.flush_callbacks()
    world.settle()
    (alert,) = world.alerts(kind=AlertKind.transfer_failed)
    assert "refused" in alert.text and alert.customer_id is not None
    assert [(d.userid, d.state) for d in alert.deliveries] == [(boss.userid, DeliveryState.sent)]


def test_notify_admins_dedupes_on_its_key(world, db):
    """Does notify_admins alert the admins once per dedupe key, after the caller commits?"""
    boss = world.rep()
    _admins(world, boss.userid)
    assert (
        alerts.notify_admins(world.corp.id, "welcome_failed", "Welcome to Wang expired.", dedupe_key="welcome:7") == 1
    )
    assert (
        alerts.notify_admins(world.corp.id, "welcome_failed", "Welcome to Wang expired.", dedupe_key="welcome:7") == 0
    )
    world.run_jobs()
    assert world.messages(boss.userid) == []  # nothing goes before the caller's commit
    db.session.commit()
    world.settle()
    assert alerts.notify_admins(world.corp.id, "welcome_failed", "Welcome to Li expired.", dedupe_key="welcome:8") == 1
    db.session.commit()
    world.settle()
    assert [a.data["notice"] for a in world.alerts(kind=AlertKind.welcome_failed)] == ["welcome:7", "welcome:8"]
    assert len(world.messages(boss.userid)) == 2


def test_admin_unknown_to_wecom_is_marked_invalid_user(world, db):
    """Is an admin userid WeCom does not know recorded as invalid_user, not retried forever?"""
    _admins(world, "nobody-here")
    alerts.notify_admins(world.corp.id, AlertKind.welcome_failed, "Welcome failed.", dedupe_key="welcome:1")
    db.session.commit()
    world.settle()
    (delivery,) = world.deliveries()
    assert delivery.state == DeliveryState.invalid_user and delivery.attempts == 1
