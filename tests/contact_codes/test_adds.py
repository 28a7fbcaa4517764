"""On add: attribution, auto-tags, the welcome outbox (exactly once, inside 20 s), stats."""

from datetime import timedelta

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.models import (
    CallbackEvent,
    ContactCodeAdd,
    ContactCodeWelcome,
    Customer,
    EventStatus,
    Identity,
    WelcomeStatus,
)
from app.services.contact_codes import welcome

from .conftest import settle

WELCOME = {
    "text": "您好 {customer_name}，我是{rep_name}，感谢关注 {channel}！",
    "attachments": [
        {"type": "link", "title": "{code_name} 资料", "url": "https://example.com/expo"},
        {"type": "miniprogram", "title": "我的名片", "pic_media_id": "MEDIA1"},
    ],
}


def _customer(db, external_userid) -> Customer:
    return db.session.scalar(select(Customer).join(Identity).where(Identity.value == external_userid))


def _welcomes(sim) -> list[dict]:
    return sim.control.state("welcomes")["welcomes"]


def _run_scheduled(app, run_jobs) -> int:
    """Move every scheduled retry to its queue now (instead of waiting out its backoff) and run it."""
    moved = 0
    for queue in app.extensions["queues"].all():
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id)
            queue.enqueue_job(queue.fetch_job(job_id))
            moved += 1
    run_jobs()
    return moved


def test_scan_attributes_tags_and_welcomes(world, create_code, sim, run_jobs, db, client, admin_headers):
    """After a scan, is the customer attributed to the channel, tagged (tags created in WeCom) and welcomed once?"""
    code = create_code(
        members=[{"userid": "zhangwei"}],
        welcome=WELCOME,
        tags=[{"name": "expo-2026"}, {"name": "展会", "group_name": "客户来源"}],
    )
    scan = sim.control.scan(config_id=code["config_id"], customer={"name": "王五"})
    settle(sim, run_jobs)
    customer = _customer(db, scan["external_userid"])
    assert customer.first_channel == customer.last_channel == "expo-2026"
    sent = _welcomes(sim)
    assert len(sent) == 1 and sent[0]["external_userid"] == scan["external_userid"]
    assert sent[0]["text"] == "您好 王五，我是张伟，感谢关注 expo-2026！"
    link, card = sent[0]["attachments"]
    assert link["link"]["title"] == "Expo 2026 booth 资料"
    assert card["miniprogram"]["page"] == "pages/card/index?userid=zhangwei" and card["miniprogram"]["appid"]
    follow = next(f for f in sim.control.state("follows")["follows"] if f["external_userid"] == scan["external_userid"])
    from wecom.client import contact_client

    names = {
        t["id"]: t["name"] for g in contact_client().external_contact.get_corp_tag_list()["tag_group"] for t in g["tag"]
    }
    assert {names[t] for t in follow["tag_id"]} == {"expo-2026", "展会"}
    detail = client.get(f"/api/v1/customers/{customer.id}", headers=admin_headers).json
    assert {t["name"] for t in detail["tags"]} == {"expo-2026", "展会"}
    adds = client.get(f"/api/v1/contact-codes/{code['id']}/adds", headers=admin_headers).json["items"]
    assert (
        adds[0]["welcome_status"] == "sent" and adds[0]["tag_status"] == "applied" and adds[0]["userid"] == "zhangwei"
    )


def test_first_touch_is_kept_and_last_touch_moves(world, create_code, sim, run_jobs, db):
    """When a customer comes through a second code, is the first channel kept and the last one updated?"""
    expo = create_code(members=[{"userid": "zhangwei"}])
    web = create_code(name="Website", channel="website", members=[{"userid": "lina"}])
    scan = sim.control.scan(config_id=expo["config_id"])
    settle(sim, run_jobs)
    sim.control.scan(config_id=web["config_id"], external_userid=scan["external_userid"])
    settle(sim, run_jobs)
    customer = _customer(db, scan["external_userid"])
    assert (customer.first_channel, customer.last_channel) == ("expo-2026", "website")


def test_duplicated_callbacks_send_one_welcome(world, create_code, sim, run_jobs, db):
    """When every callback arrives twice (and a send job runs twice), is each welcome sent exactly once?"""
    code = create_code(welcome={"text": "Hi {customer_name}"})
    sim.control.set_faults(callback_duplicate_rate=1.0)
    for i in range(3):
        sim.control.scan(config_id=code["config_id"], customer={"name": f"dup{i}"})
    settle(sim, run_jobs)
    assert len(_welcomes(sim)) == 3
    rows = db.session.scalars(select(ContactCodeWelcome)).all()
    assert len(rows) == 3 and {r.status for r in rows} == {WelcomeStatus.sent}
    assert all(r.attempts == 1 for r in rows)
    assert welcome.send(rows[0].id) == "skipped"  # a stray second job does nothing
    assert db.session.query(ContactCodeAdd).count() == 3
    assert len(_welcomes(sim)) == 3


def test_reprocessed_event_does_not_add_or_welcome_again(world, create_code, sim, run_jobs, db):
    """If an event is processed again (a replay), does the code count the add and send the welcome only once?"""
    from app.services import events

    code = create_code(welcome={"text": "Hi"})
    sim.control.scan(config_id=code["config_id"])
    settle(sim, run_jobs)
    event = db.session.scalar(select(CallbackEvent))
    event.status = EventStatus.failed
    db.session.commit()
    assert events.replay() == 1
    run_jobs()
    assert db.session.query(ContactCodeAdd).count() == 1 and db.session.query(ContactCodeWelcome).count() == 1
    assert len(_welcomes(sim)) == 1


def test_expired_welcome_code_is_recorded_not_retried(world, create_code, sim, run_jobs, db, app):
    """When WeCom answers 41050, is the welcome recorded as expired after one attempt, with no retry queued?"""
    code = create_code(welcome={"text": "Hi"})
    sim.control.config(welcome_code_ttl=0)  # every code is already dead when we send
    sim.control.scan(config_id=code["config_id"])
    settle(sim, run_jobs)
    row = db.session.scalar(select(ContactCodeWelcome))
    assert (row.status, row.errcode, row.attempts) == (WelcomeStatus.expired, 41050, 1)
    assert _run_scheduled(app, run_jobs) == 0
    assert _welcomes(sim) == []


def test_already_chatting_is_recorded(world, create_code, sim, run_jobs, db):
    """When the two started chatting before the welcome went out, is 41051 recorded as already_chatting?"""
    code = create_code(welcome={"text": "Hi"})
    scan = sim.control.scan(config_id=code["config_id"])
    sim.control.flush_callbacks()
    sim.control.start_chat(scan["userid"], scan["external_userid"])
    run_jobs()
    row = db.session.scalar(select(ContactCodeWelcome))
    assert (row.status, row.errcode) == (WelcomeStatus.already_chatting, 41051)


def test_transient_error_is_retried_inside_the_window(world, create_code, sim, run_jobs, db, app):
    """Does a 45009 on send_welcome_msg back off and send on the retry, inside the 20 s window?"""
    code = create_code(welcome={"text": "Hi"})
    sim.control.set_faults(errors=[45009], paths=["externalcontact/send_welcome_msg"], times=1)
    sim.control.scan(config_id=code["config_id"])
    settle(sim, run_jobs)
    row = db.session.scalar(select(ContactCodeWelcome))
    assert (row.status, row.errcode, row.attempts) == (WelcomeStatus.pending, 45009, 1)
    assert row.not_before <= row.deadline
    row.not_before = row.not_before - timedelta(seconds=5)  # the backoff has passed
    db.session.commit()
    assert _run_scheduled(app, run_jobs) == 1
    db.session.refresh(row)
    assert (row.status, row.attempts) == (WelcomeStatus.sent, 2) and len(_welcomes(sim)) == 1


def _add_by_hand(sim, code) -> dict:
    """A scan whose callback we process ourselves (its send job is enqueued, not run)."""
    from app.services import corps
    from app.services.event_handlers import dispatch

    scan = sim.control.scan(config_id=code["config_id"])
    dispatch(
        corps.env_corp_id(),
        {
            "Event": "change_external_contact",
            "ChangeType": "add_external_contact",
            "UserID": scan["userid"],
            "ExternalUserID": scan["external_userid"],
            "State": code["state"],
            "WelcomeCode": scan["welcome_code"],
            "CreateTime": str(scan["createtime"]),
        },
    )
    return scan


def test_window_closed_before_sending_calls_nobody(world, create_code, sim, db):
    """Is a welcome whose 20 s passed before its job ran marked expired without calling WeCom?"""
    code = create_code(welcome={"text": "Hi"})
    sim.control.config(callback_url=None)
    _add_by_hand(sim, code)
    db.session.commit()
    row = db.session.scalar(select(ContactCodeWelcome))
    assert welcome.send(row.id, now=row.deadline + timedelta(seconds=1)) == "expired"
    assert "externalcontact/send_welcome_msg" not in sim.control.state("api_calls")["api_calls"]
    db.session.refresh(row)
    assert row.attempts == 0 and row.last_error.startswith("the 20 s window closed")


def test_sweep_restarts_lost_welcomes_and_expires_late_ones(world, create_code, sim, db, run_jobs, app):
    """Does the sweep restart the sending of a welcome whose job was lost, and expire one past its window?"""
    from app.models import utcnow

    code = create_code(welcome={"text": "Hi"})
    sim.control.config(callback_url=None)
    _add_by_hand(sim, code)
    _add_by_hand(sim, code)
    db.session.commit()
    app.extensions["queues"]["high"].empty()  # the drainer's job is lost (a crash after the commit)
    late, lost = db.session.scalars(select(ContactCodeWelcome).order_by(ContactCodeWelcome.id)).all()
    late.deadline = utcnow() - timedelta(seconds=1)
    lost.updated_at = utcnow() - timedelta(seconds=10)
    db.session.commit()
    assert welcome.sweep() == {"expired": 1, "pending": 1}
    run_jobs()
    db.session.expire_all()
    assert (late.status, lost.status) == (WelcomeStatus.expired, WelcomeStatus.sent)
    assert len(_welcomes(sim)) == 1


def test_stats_count_scans_adds_welcomes_and_lost(
    world, create_code, sim, run_jobs, client, admin_headers, live_server
):
    """Do the stats (and CSV) count landing scans, adds, welcomes sent, customers lost within 7 days, and net?"""
    import requests

    code = create_code(mode="routed", welcome={"text": "Hi"}, members=[{"userid": "zhangwei"}, {"userid": "lina"}])
    landings = [
        requests.get(f"{live_server}/c/{code['state']}", params={"format": "json"}, timeout=10).json() for _ in range(4)
    ]
    scans = [sim.control.scan(config_id=landing["config_id"]) for landing in landings[:3]]
    settle(sim, run_jobs)
    sim.control.customer_deletes_rep(scans[0]["external_userid"], scans[0]["userid"])
    settle(sim, run_jobs)
    body = client.get(f"/api/v1/contact-codes/{code['id']}/stats", headers=admin_headers).json
    assert body["totals"] == {"scans": 4, "adds": 3, "welcomes_sent": 3, "lost": 1, "net": 2}
    by_rep = {r["userid"]: r for r in body["by_rep"]}
    assert by_rep["zhangwei"]["scans"] == by_rep["lina"]["scans"] == 2
    assert by_rep["zhangwei"]["lost"] == 1 and by_rep["zhangwei"]["net"] == 1
    assert len(body["days"]) == 30 and body["days"][-1]["adds"] == 3
    csv = client.get(f"/api/v1/contact-codes/{code['id']}/stats.csv", headers=admin_headers)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == "day,userid,name,scans,adds,welcomes_sent,lost,net"
    assert sorted(line.split(",")[1] for line in lines[1:]) == ["lina", "zhangwei"]
    assert (
        client.get(
            f"/api/v1/contact-codes/{code['id']}/stats?from=2026-05-02&to=2026-05-01", headers=admin_headers
        ).status_code
        == 422
    )


def test_scan_of_a_foreign_state_is_left_alone(world, sim, run_jobs, db):
    """Is an add carrying a state no code owns (a card, a hand-made way) ignored by the codes?"""
    from wecom.client import contact_client

    config_id = contact_client().external_contact.add_contact_way(type=1, scene=2, state="card-1", user=["zhangwei"])[
        "config_id"
    ]
    sim.control.scan(config_id=config_id)
    settle(sim, run_jobs)
    assert db.session.scalar(select(CallbackEvent)).status == EventStatus.done
    assert db.session.query(ContactCodeAdd).count() == 0


def test_tagging_trouble_never_blocks_the_add(world, create_code, sim, run_jobs, db):
    """When mark_tag fails (busy, or the tag was deleted in WeCom), is the welcome still sent and
    the tagging finished by the job (the tag made again)?"""
    from app.models import ContactCode
    from wecom.client import contact_client

    code = create_code(welcome={"text": "Hi"}, tags=[{"name": "vip-expo"}])
    old_tag = db.session.get(ContactCode, code["id"]).tag_ids[0]
    contact_client().external_contact.del_corp_tag(tag_id=[old_tag])
    scan = sim.control.scan(config_id=code["config_id"])
    settle(sim, run_jobs)
    add = db.session.scalar(select(ContactCodeAdd))
    assert add.tag_status == "applied" and len(_welcomes(sim)) == 1
    new_tag = db.session.get(ContactCode, code["id"]).tag_ids[0]
    assert new_tag != old_tag
    follow = next(f for f in sim.control.state("follows")["follows"] if f["external_userid"] == scan["external_userid"])
    assert follow["tag_id"] == [new_tag]

    sim.control.set_faults(errors=[45009], paths=["externalcontact/mark_tag"], times=1)
    sim.control.scan(config_id=code["config_id"])
    settle(sim, run_jobs)
    assert [a.tag_status for a in db.session.scalars(select(ContactCodeAdd).order_by(ContactCodeAdd.id))] == [
        "applied",
        "applied",
    ]


def test_a_welcome_never_sent_alerts_the_admins_once(world, create_code, sim, run_jobs, db):
    """When a welcome ends expired (41050), are the admins alerted once about that customer?"""
    from app.models import Alert, AlertKind

    code = create_code(welcome={"text": "Hi"})
    sim.control.config(welcome_code_ttl=0)
    sim.control.scan(config_id=code["config_id"], customer={"name": "Never greeted"})
    settle(sim, run_jobs)
    row = db.session.scalar(select(ContactCodeWelcome))
    (alert,) = db.session.scalars(select(Alert).where(Alert.kind == AlertKind.welcome_failed)).all()
    assert alert.data["notice"] == f"welcome:{row.id}" and "Never greeted" in alert.text
    assert alert.customer_id is not None and alert.staff_id == row.staff_id
