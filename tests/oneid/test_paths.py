"""The callback and mini-program paths use OneID: WeCom (the simulator, real signed callbacks, a
real worker) and the mini-program's identities end in one customer, whichever comes first."""

import pytest
from sqlalchemy import select

from app.models import Customer, Identity, IdentityType, MergeKind, MergeRecord
from app.services import corps, customers, oneid
from tests import factories
from wecom.client import contact_client

EXT, UNION, MP, PENDING = (
    IdentityType.external_userid,
    IdentityType.unionid,
    IdentityType.mp_openid,
    IdentityType.pending_id,
)


@pytest.fixture
def way(sim):
    """A contact way of one seeded rep."""
    rep = sim.control.seed_demo()["users"][0]
    return contact_client().external_contact.add_contact_way(type=1, scene=2, state="oneid", user=[rep])["config_id"]


def _settle(sim, run_jobs):
    sim.control.flush_callbacks()
    run_jobs()


def _identities(db, customer_id):
    db.session.expire_all()
    rows = db.session.scalars(select(Identity).where(Identity.customer_id == customer_id)).all()
    return {(r.type, r.value) for r in rows}


def test_wecom_customer_logging_into_the_mini_program_is_one_customer(db, sim, way, run_jobs):
    """A customer added in WeCom, then logging into the mini-program with the same unionid: one customer?"""
    scan = sim.control.scan(config_id=way, customer={"name": "李雷"})
    _settle(sim, run_jobs)
    wecom_customer = oneid.customer_id_for(corps.env_corp_id(), EXT, scan["external_userid"])
    assert wecom_customer is not None
    # What the login will do with code2session's answer for this WeChat user.
    login = sim.control.mint_js_code(external_userid=scan["external_userid"])
    customer = oneid.resolve_or_create(
        corps.env_corp_id(), [(MP, login["openid"]), (UNION, login["unionid"])], source="mp_login"
    )
    db.session.commit()
    assert customer.id == wecom_customer
    assert _identities(db, customer.id) == {
        (EXT, scan["external_userid"]),
        (UNION, scan["unionid"]),
        (MP, login["openid"]),
    }
    assert db.session.query(Customer).count() == 1


def test_mini_program_first_then_wecom_is_one_customer(db, sim, way, run_jobs):
    """A visitor known from the mini-program who then adds a rep in WeCom: one customer, the same id?"""
    person = sim.control.add_customer(name="韩梅梅")
    corp_id = corps.env_corp_id()
    mp_customer = oneid.link(corp_id, [(MP, person["openid"]), (UNION, person["unionid"])], "mp_login")
    sim.control.scan(config_id=way, external_userid=person["external_userid"])
    _settle(sim, run_jobs)
    assert oneid.customer_id_for(corp_id, EXT, person["external_userid"]) == mp_customer
    assert db.session.query(Customer).count() == 1


def test_two_existing_records_are_merged_by_the_callback(db, sim, way, run_jobs, corp):
    """When a WeCom record without unionid and a mini-program record meet in a callback, are they
    merged automatically into the older, with a merge record from the callback?"""
    person = sim.control.add_customer(name="Tom")
    older = factories.customer(corp, identities=[(EXT, person["external_userid"])])
    newer = oneid.link(corp.id, [(MP, person["openid"]), (UNION, person["unionid"])], "mp_login")
    sim.control.scan(config_id=way, external_userid=person["external_userid"])
    _settle(sim, run_jobs)
    db.session.expire_all()
    assert customers.resolve_id(corp.id, newer) == older.id
    record = db.session.scalars(select(MergeRecord)).one()
    assert (record.kind, record.survivor_id, record.absorbed_id, record.source) == (
        MergeKind.auto,
        older.id,
        newer,
        "wecom_callback",
    )
    assert (MP, person["openid"]) in _identities(db, older.id)


def test_idconvert_links_a_customer_or_a_pending_id(db, sim, way, run_jobs, corp):
    """Does idconvert link a WeChat user to the corp's customer, or hold a pending_id the later
    WeCom add joins?"""
    known = sim.control.scan(config_id=way)
    _settle(sim, run_jobs)
    customer = oneid.link_idconvert(corp.id, known["unionid"], known["openid"])
    db.session.commit()
    assert customer.id == oneid.customer_id_for(corp.id, EXT, known["external_userid"])

    stranger = sim.control.add_customer(name="Pending")
    pending = oneid.link_idconvert(corp.id, stranger["unionid"], stranger["openid"])
    db.session.commit()
    assert any(t == PENDING for t, _ in _identities(db, pending.id))
    sim.control.scan(config_id=way, external_userid=stranger["external_userid"])
    _settle(sim, run_jobs)
    assert oneid.customer_id_for(corp.id, EXT, stranger["external_userid"]) == pending.id


def test_idconvert_job_runs_in_the_worker(db, sim, way, run_jobs, corp):
    """Does the idconvert job, enqueued as the login would, link the WeChat user in a real worker?"""
    from jobs.queues import enqueue

    known = sim.control.scan(config_id=way)
    _settle(sim, run_jobs)
    enqueue(oneid.link_idconvert_job, corp.id, known["unionid"], known["openid"], queue="low")
    run_jobs()
    db.session.expire_all()
    owner = oneid.customer_id_for(corp.id, EXT, known["external_userid"])
    assert oneid.customer_id_for(corp.id, MP, known["openid"]) == owner is not None
