"""The WeCom link end to end: the simulator sends real signed, encrypted callbacks over HTTP to
the app, a real RQ worker processes them, and the handlers read WeCom (the simulator) back."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.models import (
    CallbackEvent,
    Customer,
    DeletedBy,
    EventStatus,
    FollowRelation,
    FollowStatus,
    GroupChat,
    Identity,
    Staff,
    StaffStatus,
    utcnow,
)
from app.services import corps, events, sync
from wecom.client import call_stats, contact_client


@pytest.fixture
def world(sim):
    """The demo world: departments, reps, tags and a few customers already followed."""
    return sim.control.seed_demo()


def _way(userids, state="expo"):
    return contact_client().external_contact.add_contact_way(type=2 if len(userids) > 1 else 1, scene=2,
                                                             state=state, user=userids)["config_id"]


def _settle(sim, run_jobs):
    sim.control.flush_callbacks()
    run_jobs()


def _relation(db, userid, external_userid):
    return db.session.execute(
        select(FollowRelation).join(Staff, Staff.id == FollowRelation.staff_id)
        .join(Identity, Identity.customer_id == FollowRelation.customer_id)
        .where(Staff.userid == userid, Identity.value == external_userid)
    ).scalar_one()


def test_url_verification_through_the_simulator(sim, live_server):
    """Does WeCom's URL check (signed, encrypted echostr) pass against our callback URL?"""
    assert sim.control.verify_url()["ok"] is True


def test_scan_creates_customer_identities_and_relation(sim, world, db, run_jobs, client, admin_headers):
    """After a scan, is the customer stored with external_userid and unionid, followed by the rep
    with the code's state, and listed by the API?"""
    rep = world["users"][0]
    scan = sim.control.scan(config_id=_way([rep]), unionid="union-new-1", customer={"name": "王五"})
    _settle(sim, run_jobs)
    customer = db.session.scalar(select(Customer).where(Customer.name == "王五"))
    assert {(i.type, i.value) for i in customer.identities} == {("external_userid", scan["external_userid"]),
                                                                ("unionid", "union-new-1")}
    relation = _relation(db, rep, scan["external_userid"])
    assert relation.status == FollowStatus.active and relation.state == "expo" and relation.add_way == 1
    listed = client.get("/api/v1/customers?q=王五", headers=admin_headers).json["items"]
    assert [c["id"] for c in listed] == [customer.id]


def test_duplicated_callbacks_have_one_effect(sim, world, db, run_jobs):
    """When every callback is delivered twice, is each event stored and applied once?"""
    sim.control.set_faults(callback_duplicate_rate=1.0)
    way = _way(world["users"][:2])
    for i in range(3):
        sim.control.scan(config_id=way, customer={"name": f"dup{i}"})
    _settle(sim, run_jobs)
    delivered = [c for c in sim.control.callbacks() if c["state"] == "delivered"]
    assert len(delivered) >= 6
    assert db.session.query(CallbackEvent).count() == 3
    assert db.session.query(Customer).filter(Customer.name.like("dup%")).count() == 3


def test_event_stored_while_redis_is_down_is_processed_later(sim, world, db, run_jobs, app):
    """If the job cannot be enqueued, is the callback still acknowledged and the event processed later?"""
    from redis.exceptions import ConnectionError as RedisDown

    queue = app.extensions["queues"]["high"]

    def broken(*args, **kwargs):
        raise RedisDown("simulated outage")

    queue.enqueue = broken
    try:
        sim.control.scan(config_id=_way([world["users"][0]]), customer={"name": "outage"})
        records = sim.control.flush_callbacks()
    finally:
        del queue.enqueue
    assert [a["status"] for a in records[-1]["attempts"]] == [200]
    run_jobs()
    assert db.session.query(CallbackEvent).one().status == EventStatus.received
    db.session.execute(update(CallbackEvent).values(updated_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    assert events.sweep() == 1
    run_jobs()
    db.session.expire_all()
    assert db.session.query(CallbackEvent).one().status == EventStatus.done
    assert db.session.query(Customer).filter_by(name="outage").count() == 1


def test_customer_deletes_rep_is_a_lost_customer(sim, world, db, run_jobs):
    """Does del_follow_user close the relation as deleted by the customer?"""
    rep = world["users"][0]
    scan = sim.control.scan(config_id=_way([rep]))
    _settle(sim, run_jobs)
    sim.control.customer_deletes_rep(scan["external_userid"], rep)
    _settle(sim, run_jobs)
    relation = _relation(db, rep, scan["external_userid"])
    assert relation.status == FollowStatus.deleted and relation.deleted_by == DeletedBy.customer
    assert relation.deleted_at is not None


def test_rep_deletes_customer(sim, world, db, run_jobs):
    """Does del_external_contact close the relation as deleted by the rep, keeping the row?"""
    rep = world["users"][1]
    scan = sim.control.scan(config_id=_way([rep]))
    _settle(sim, run_jobs)
    sim.control.rep_deletes_customer(rep, scan["external_userid"])
    _settle(sim, run_jobs)
    relation = _relation(db, rep, scan["external_userid"])
    assert relation.status == FollowStatus.deleted and relation.deleted_by == DeletedBy.staff


def test_edit_updates_remark_and_tags(sim, world, db, run_jobs):
    """Does edit_external_contact bring the new remark and corp tags in?"""
    rep = world["users"][0]
    scan = sim.control.scan(config_id=_way([rep]))
    _settle(sim, run_jobs)
    tag_id = contact_client().external_contact.get_corp_tag_list()["tag_group"][0]["tag"][0]["id"]
    sim.control.edit_customer(rep, scan["external_userid"], remark="VIP buyer", add_tag=[tag_id])
    _settle(sim, run_jobs)
    relation = _relation(db, rep, scan["external_userid"])
    assert relation.remark == "VIP buyer"
    assert [t.wecom_tag_id for t in relation.tags] == [tag_id]


def test_half_add_is_pending(sim, world, db, run_jobs):
    """Does add_half_external_contact (rep has not accepted) leave the relation pending?"""
    rep = world["users"][0]
    config_id = contact_client().external_contact.add_contact_way(type=1, scene=2, state="half", user=[rep],
                                                                  skip_verify=False)["config_id"]
    scan = sim.control.scan(config_id=config_id)
    _settle(sim, run_jobs)
    assert db.session.query(CallbackEvent).one().change_type == "add_half_external_contact"
    assert _relation(db, rep, scan["external_userid"]).status == FollowStatus.pending


def test_staff_events(sim, world, db, run_jobs):
    """Do create_user, update_user (rename) and delete_user keep Staff true?"""
    sim.control.add_user("newrep", name="New Rep", department=[1], notify=True)
    _settle(sim, run_jobs)
    assert db.session.scalar(select(Staff).where(Staff.userid == "newrep")).name == "New Rep"
    sim.control.update_user("newrep", name="Renamed", new_userid="newrep2")
    _settle(sim, run_jobs)
    row = db.session.scalar(select(Staff).where(Staff.userid == "newrep2"))
    assert row is not None and row.name == "Renamed"
    sim.control.resign_user("newrep2")
    _settle(sim, run_jobs)
    db.session.refresh(row)
    assert row.status == StaffStatus.resigned and row.resigned_at is not None


def test_group_chat_events(sim, world, db, run_jobs):
    """Do change_external_chat create, update and dismiss keep group chats true?"""
    chat = sim.control.create_group_chat(owner=world["users"][0], members=world["customers"][:2], name="VIP group")
    _settle(sim, run_jobs)
    row = db.session.scalar(select(GroupChat))
    assert row.name == "VIP group" and row.owner_userid == world["users"][0]
    sim.control.update_group_chat(chat["chat_id"], "change_name", name="VIP group 2")
    _settle(sim, run_jobs)
    db.session.refresh(row)
    assert row.name == "VIP group 2"
    sim.control.dismiss_group_chat(chat["chat_id"])
    _settle(sim, run_jobs)
    db.session.refresh(row)
    assert row.status == "dismissed"


def test_token_expiry_mid_run_is_refreshed(sim, world, db, run_jobs, app):
    """When WeCom invalidates (40014) or expires (42001) the token mid-run, does the next call refresh it?"""
    way = _way([world["users"][0]])
    for mode in ("invalid", "expired"):
        sim.control.invalidate_tokens(mode=mode)
        sim.control.scan(config_id=way)
        _settle(sim, run_jobs)
    assert db.session.query(CallbackEvent).filter_by(status=EventStatus.done).count() == 2
    stats = call_stats(app.extensions["redis"])
    assert stats["externalcontact/get"].get("err:40014", 0) + stats["externalcontact/get"].get("err:42001", 0) >= 1


def test_a_process_reuses_its_token_then_reads_redis_again(sim, world, app):
    """Does a client reuse the token it read for a while (no Redis reads per call), and after
    that pick up whatever Redis holds, refreshing when WeCom refuses it?"""
    client = contact_client()
    user = world["users"][0]
    client.user.get(user)
    key = client.access_token_key
    client.session.set(key, "not-a-token")  # what a peer process would see from now on
    client.user.get(user)  # the memo still holds the good token: no 40014
    assert call_stats(app.extensions["redis"])["user/get"].get("err:40014", 0) == 0
    client._token_memo = (client._token_memo[0], 0.0)  # the memo's time is up
    client.user.get(user)  # reads "not-a-token", WeCom answers 40014, the client refreshes
    assert call_stats(app.extensions["redis"])["user/get"]["err:40014"] == 1
    assert client.session.get(key) not in (None, "not-a-token")


def test_45009_bursts_back_off_and_finish(sim, world, db, run_jobs, app):
    """Under a burst of 45009 answers, do events retry with backoff and all end done?"""
    way = _way(world["users"][:3])
    sim.control.set_faults(rate=1.0, errors=[45009], paths=["externalcontact/get"], times=3)
    for i in range(3):
        sim.control.scan(config_id=way, customer={"name": f"burst{i}"})
    sim.control.flush_callbacks()
    run_jobs()
    retrying = db.session.query(CallbackEvent).filter_by(status=EventStatus.received).count()
    assert retrying >= 1  # backed off, not failed, not spinning
    assert db.session.query(CallbackEvent).filter_by(status=EventStatus.failed).count() == 0
    # Let the backoff pass, then run the scheduled wake-ups now instead of waiting for them.
    from rq.registry import ScheduledJobRegistry

    db.session.execute(update(CallbackEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    for queue in app.extensions["queues"].all():
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id)
            queue.enqueue_job(queue.fetch_job(job_id))
    run_jobs()
    db.session.expire_all()
    assert db.session.query(CallbackEvent).filter_by(status=EventStatus.done).count() == 3
    assert db.session.query(Customer).filter(Customer.name.like("burst%")).count() == 3


def test_sync_pulls_everything_and_is_idempotent(sim, world, db):
    """Does a full sync mirror departments, staff, tags and every customer, twice without change?"""
    corp_id = corps.env_corp_id()
    first = sync.run(corp_id)
    assert first.staff == len(world["users"]) and first.contacts >= 1
    counts = (db.session.query(Customer).count(), db.session.query(FollowRelation).count())
    second = sync.run(corp_id)
    assert second.relations_closed == 0
    assert (db.session.query(Customer).count(), db.session.query(FollowRelation).count()) == counts


def test_sync_reconciles_what_callbacks_missed(sim, world, db, run_jobs):
    """With the callback URL down, do relations added and removed meanwhile get reconciled?"""
    corp_id = corps.env_corp_id()
    sync.run(corp_id)
    sim.control.config(callback_url=None)  # our URL is down: callbacks are not heard
    gone = world["customers"][0]
    follower = next(r.staff.userid for r in db.session.scalars(select(FollowRelation))
                    if any(i.value == gone for i in r.customer.identities))
    sim.control.customer_deletes_rep(gone, follower)
    added = sim.control.scan(config_id=_way([world["users"][0]]))
    sim.control.resign_user(world["users"][-1])
    report = sync.run(corp_id)
    assert report.relations_closed == 1 and report.resigned == [world["users"][-1]]
    assert _relation(db, follower, gone).deleted_by == DeletedBy.sync
    assert _relation(db, world["users"][0], added["external_userid"]).status == FollowStatus.active


def test_sync_command_shows_progress(sim, world, runner):
    """Does `flask wecom sync` run and report what it pulled?"""
    result = runner.invoke(args=["wecom", "sync"])
    assert result.exit_code == 0, result.output
    assert "customer relations" in result.output


def test_a_customer_with_more_than_500_reps_is_mirrored_whole(sim, world, db, run_jobs):
    """Past 500 followers WeCom pages externalcontact/get: are all 505 relations mirrored?"""
    from wecom.simulator.directory import add_user
    from wecom.simulator.entities import Follow

    scan = sim.control.scan(config_id=_way([world["users"][0]]))
    with sim.world.lock:
        for n in range(504):
            add_user(sim.world, f"many{n}", department=[1])
            sim.world.follows.add(Follow(f"many{n}", scan["external_userid"], createtime=sim.world.now_int()))
    _settle(sim, run_jobs)
    customer_id = db.session.scalar(select(Identity.customer_id).where(Identity.value == scan["external_userid"]))
    assert db.session.query(FollowRelation).filter_by(customer_id=customer_id).count() == 505


def test_sync_mirrors_the_reps_tags(sim, world, db):
    """Does a full sync bring each relation's corp tags (batch/get_by_user gives only their ids)?"""
    rep = world["users"][0]
    scan = sim.control.scan(config_id=_way([rep]))
    group = contact_client().external_contact.get_corp_tag_list()["tag_group"][0]
    tag = group["tag"][0]
    sim.control.edit_customer(rep, scan["external_userid"], add_tag=[tag["id"]])
    sync.run(corps.env_corp_id())
    assert [(t.wecom_tag_id, t.name) for t in _relation(db, rep, scan["external_userid"]).tags] == [
        (tag["id"], tag["name"])
    ]
