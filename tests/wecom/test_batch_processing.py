"""Drained batches: the set-based path (one prefetch of WeCom, one OneID call, one commit) must
leave exactly the mirror the one-by-one path leaves, and hand anything unusual to it."""

import pytest
from sqlalchemy import select, text, update

from app.models import CallbackEvent, Customer, EventStatus, FollowRelation, IdentityType
from app.services import corps, events, oneid
from wecom.client import call_stats, contact_client


@pytest.fixture
def world(sim):
    return sim.control.seed_demo()


def _way(userids, state="batch"):
    return contact_client().external_contact.add_contact_way(
        type=2 if len(userids) > 1 else 1, scene=2, state=state, user=userids
    )["config_id"]


def _mirror(db) -> tuple[dict, set]:
    """The mirror without row ids: customers by their identities, relations by who and whom."""
    db.session.expire_all()

    def idents(customer):
        return frozenset((str(i.type), i.value) for i in customer.identities)

    customers = {
        idents(c): (c.name, c.avatar, c.gender, c.corp_name)
        for c in db.session.scalars(select(Customer).where(Customer.merged_into_id.is_(None)))
    }
    relations = {
        (
            r.staff.userid,
            idents(r.customer),
            str(r.status),
            r.remark,
            r.state,
            r.add_way,
            frozenset(t.wecom_tag_id for t in r.tags),
        )
        for r in db.session.scalars(select(FollowRelation))
    }
    return customers, relations


def _known_people(corp_id: int, external_userid: str, unionid: str) -> None:
    """Two customers the next add must merge: one holds the external_userid, one the unionid."""
    oneid.link(corp_id, [(IdentityType.external_userid, external_userid)], "test")
    oneid.link(corp_id, [(IdentityType.mp_openid, "o-merge"), (IdentityType.unionid, unionid)], "test")


def test_a_batch_mirrors_what_one_by_one_does(sim, world, db, run_jobs, app):
    """Does a batch of mixed contact events (new customers, two reps of one customer, tags, an
    edit, a merge, an add and a delete of one contact) leave the same mirror as one by one?"""
    corp_id = corps.env_corp_id()
    rep_a, rep_b = world["users"][:2]
    merging = sim.control.add_customer(name="merging", unionid="union-merge")["external_userid"]
    _known_people(corp_id, merging, "union-merge")
    shared = _way([rep_a, rep_b])
    for n in range(6):
        sim.control.scan(config_id=shared, unionid=f"union-batch-{n}", customer={"name": f"batch{n}"})
    both = sim.control.scan(config_id=_way([rep_a]), customer={"name": "two reps"})
    sim.control.scan(config_id=_way([rep_b]), external_userid=both["external_userid"])
    tagged = sim.control.scan(config_id=_way([rep_a]), customer={"name": "tagged"})
    tag_id = contact_client().external_contact.get_corp_tag_list()["tag_group"][0]["tag"][0]["id"]
    sim.control.edit_customer(rep_a, tagged["external_userid"], remark="VIP", add_tag=[tag_id])
    sim.control.scan(config_id=_way([rep_a]), external_userid=merging)
    gone = sim.control.scan(config_id=_way([rep_b]), customer={"name": "gone"})
    sim.control.customer_deletes_rep(gone["external_userid"], rep_b)
    sim.control.flush_callbacks()
    stored = db.session.query(CallbackEvent).count()
    assert stored == 13

    run_jobs()
    assert {e.status for e in db.session.query(CallbackEvent)} == {EventStatus.done}
    # Set-based: the six, the first rep's add of the two-rep customer, the tagged add and (in
    # the next batch: no welcome code, lower priority) its edit. One by one: the second rep's
    # add (same contact), the merge, the add WeCom no longer knows (84061) and the delete.
    assert events.path_counts() == {"batches": 2, "batched": 9, "one_by_one": 4}
    batched = _mirror(db)

    # The same events again, one by one, on an empty mirror.
    db.session.execute(text("TRUNCATE customer RESTART IDENTITY CASCADE"))
    db.session.execute(update(CallbackEvent).values(status=EventStatus.received, attempts=0))
    db.session.commit()
    _known_people(corp_id, merging, "union-merge")
    for event_id in db.session.scalars(select(CallbackEvent.id).order_by(CallbackEvent.id)).all():
        assert events.process(event_id) == "done"
    assert _mirror(db) == batched

    customers, relations = batched
    # Six, the one with two reps, the tagged one, the merged pair as one; the customer who had
    # already deleted the rep when the add was read is WeCom's no one's contact: not stored.
    assert len(customers) == 9
    assert any(
        {("external_userid", merging), ("unionid", "union-merge"), ("mp_openid", "o-merge")} <= c for c in customers
    )
    assert any(r[0] == rep_a and r[3] == "VIP" and r[6] == {tag_id} for r in relations)
    two = [r for r in relations if ("external_userid", both["external_userid"]) in r[1]]
    assert sorted(r[0] for r in two) == sorted([rep_a, rep_b])


def test_each_contact_is_fetched_once_per_batch(sim, world, db, run_jobs, app):
    """Does a batch of adds read each contact from WeCom once, and store every customer?"""
    way = _way(world["users"][:3])
    for n in range(15):
        sim.control.scan(config_id=way, customer={"name": f"once{n}"})
    sim.control.flush_callbacks()
    before = call_stats(app.extensions["redis"]).get("externalcontact/get", {}).get("count", 0)
    run_jobs()
    after = call_stats(app.extensions["redis"])["externalcontact/get"]["count"]
    assert after - before == 15
    assert db.session.query(Customer).filter(Customer.name.like("once%")).count() == 15


def test_a_transient_error_retries_only_its_event(sim, world, db, run_jobs, app):
    """When WeCom refuses one contact's read (45033) inside a batch, are the others done and
    only that event left to retry?"""
    way = _way(world["users"][:2])
    for n in range(8):
        sim.control.scan(config_id=way, customer={"name": f"busy{n}"})
    sim.control.flush_callbacks()
    sim.control.set_faults(errors=[45033], paths=["externalcontact/get"], times=1)
    run_jobs()
    statuses = sorted(str(e.status) for e in db.session.query(CallbackEvent))
    assert statuses == ["done"] * 7 + ["received"]
    retrying = db.session.scalar(select(CallbackEvent).where(CallbackEvent.status == EventStatus.received))
    assert "45033" in retrying.last_error and retrying.next_attempt_at is not None
    assert db.session.query(Customer).filter(Customer.name.like("busy%")).count() == 7


def test_a_bad_event_in_a_batch_fails_alone(sim, world, db, run_jobs, app):
    """When one stored event of a batch is malformed (an add without ExternalUserID), does the
    batch fall back to one by one, the others done and the bad one failed and explained?"""
    way = _way(world["users"][:1])
    for n in range(4):
        sim.control.scan(config_id=way, customer={"name": f"good{n}"})
    sim.control.hold_callbacks()
    with app.test_request_context():
        events.intake(
            {
                "ToUserName": app.config["WECOM_CORP_ID"],
                "MsgType": "event",
                "CreateTime": "1",
                "Event": "change_external_contact",
                "ChangeType": "add_external_contact",
                "UserID": "x",
            }
        )
    sim.control.release_callbacks()
    sim.control.flush_callbacks()
    run_jobs()
    rows = db.session.scalars(select(CallbackEvent).order_by(CallbackEvent.id)).all()
    assert sorted(str(r.status) for r in rows) == ["done"] * 4 + ["failed"]
    bad = next(r for r in rows if r.status == EventStatus.failed)
    assert "ExternalUserID" in bad.last_error
    assert db.session.query(Customer).filter(Customer.name.like("good%")).count() == 4
