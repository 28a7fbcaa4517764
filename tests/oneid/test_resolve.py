"""OneID resolution rules: strong links merge, conflicts are flagged, weak signals suggest,
phones count only in E.164."""

import pytest
from sqlalchemy import select

from app.models import (
    AuditLog,
    Customer,
    Identity,
    IdentityConflict,
    IdentityType,
    MergeKind,
    MergeRecord,
    MergeSuggestion,
    SuggestionStatus,
)
from app.services import customers, oneid
from tests import factories

EXT, UNION, MP, PHONE = (
    IdentityType.external_userid,
    IdentityType.unionid,
    IdentityType.mp_openid,
    IdentityType.phone,
)


def _identities(db, customer_id):
    db.session.expire_all()
    return {(i.type, i.value) for i in db.session.get(Customer, customer_id).identities}


def _resolve(db, corp, identities, source="test", **profile):
    customer = oneid.resolve_or_create(corp.id, identities, source, **profile)
    db.session.commit()
    return customer.id


def test_new_identities_make_one_new_customer(db, corp):
    """Do identities nobody holds create one customer holding all of them, with their source?"""
    cid = _resolve(db, corp, [(EXT, "e1"), (UNION, "u1")], source="wecom_callback", name="Wang")
    rows = db.session.scalars(select(Identity).where(Identity.customer_id == cid)).all()
    assert {(r.type, r.value, r.source, r.verified) for r in rows} == {
        (EXT, "e1", "wecom_callback", True),
        (UNION, "u1", "wecom_callback", True),
    }
    assert db.session.get(Customer, cid).name == "Wang"
    assert _resolve(db, corp, [(UNION, "u1"), (MP, "m1")]) == cid
    assert _identities(db, cid) == {(EXT, "e1"), (UNION, "u1"), (MP, "m1")}


def test_strong_link_merges_into_the_older_customer(db, corp):
    """When a link joins identities held by two customers, do they become the older one, with
    the newer id still resolving to it and the merge audited as the system's?"""
    older = factories.customer(corp, identities=[(EXT, "e1")])
    newer = factories.customer(corp, identities=[(UNION, "u1"), (MP, "m1")])
    assert _resolve(db, corp, [(EXT, "e1"), (UNION, "u1")], source="wecom_callback") == older.id
    assert _identities(db, older.id) == {(EXT, "e1"), (UNION, "u1"), (MP, "m1")}
    assert db.session.get(Customer, newer.id).merged_into_id == older.id
    assert customers.resolve_id(corp.id, newer.id) == older.id
    assert oneid.customer_id_for(corp.id, MP, "m1") == older.id
    record = db.session.scalars(select(MergeRecord)).one()
    assert (record.kind, record.survivor_id, record.absorbed_id, record.source) == (
        MergeKind.auto,
        older.id,
        newer.id,
        "wecom_callback",
    )
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "customer.merge")).one()
    assert entry.actor == "system" and "unionid=u1" in entry.reason and entry.target_id == str(older.id)


def test_link_of_three_customers_merges_all_into_the_oldest(db, corp):
    """Does one link touching three customers leave one customer, the oldest, with two merge records?"""
    a = factories.customer(corp, identities=[(EXT, "e1")])
    b = factories.customer(corp, identities=[(MP, "m1")])
    c = factories.customer(corp, identities=[(UNION, "u1")])
    assert _resolve(db, corp, [(UNION, "u1"), (MP, "m1"), (EXT, "e1")]) == a.id
    assert {(r.survivor_id, r.absorbed_id) for r in db.session.scalars(select(MergeRecord))} == {
        (a.id, b.id),
        (a.id, c.id),
    }


def test_two_unionids_are_flagged_not_merged(db, corp):
    """Would joining customers with different unionids be flagged for review, once, and leave them apart?"""
    a = factories.customer(corp, identities=[(EXT, "e1"), (UNION, "u1")])
    b = factories.customer(corp, identities=[(UNION, "u2")])
    for _ in range(2):  # a retried callback flags once
        assert _resolve(db, corp, [(EXT, "e1"), (UNION, "u2")]) == a.id
    assert db.session.get(Customer, b.id).merged_into_id is None
    assert db.session.scalar(select(MergeRecord)) is None
    conflict = db.session.scalars(select(IdentityConflict)).one()
    assert conflict.kind == "unionid" and conflict.customer_ids == [a.id, b.id]
    assert conflict.identities == [["external_userid", "e1"], ["unionid", "u2"]]


def test_a_second_unionid_is_not_attached(db, corp):
    """Is a link claiming a second unionid for a customer flagged, without attaching it?"""
    a = factories.customer(corp, identities=[(EXT, "e1"), (UNION, "u1")])
    assert _resolve(db, corp, [(EXT, "e1"), (UNION, "u9"), (MP, "m1")]) == a.id
    assert _identities(db, a.id) == {(EXT, "e1"), (UNION, "u1"), (MP, "m1")}
    assert db.session.scalars(select(IdentityConflict)).one().customer_ids == [a.id]


def test_different_verified_phones_are_flagged_not_merged(db, corp):
    """Would joining two customers that each hold a different verified phone be flagged instead?"""
    a = factories.customer(corp, identities=[(EXT, "e1")])
    b = factories.customer(corp, identities=[(MP, "m1")])
    oneid.link_phone(corp.id, a.id, "13800138000", verified=True, source="mp_phone")
    oneid.link_phone(corp.id, b.id, "13900139000", verified=True, source="mp_phone")
    db.session.commit()
    _resolve(db, corp, [(EXT, "e1"), (MP, "m1")])
    assert db.session.get(Customer, b.id).merged_into_id is None
    assert db.session.scalars(select(IdentityConflict)).one().kind == "verified_phone"


@pytest.mark.parametrize("raw", ["13800138000", "138 0013 8000", "+86 138-0013-8000", "0086 13800138000"])
def test_phones_are_normalised_to_e164(db, corp, raw):
    """Does every common spelling of a mainland mobile count as the same E.164 identity?"""
    a = factories.customer(corp)
    oneid.link_phone(corp.id, a.id, raw, verified=True, source="mp_phone")
    db.session.commit()
    assert _identities(db, a.id) == {(PHONE, "+8613800138000")}
    assert oneid.customer_id_for(corp.id, PHONE, "138-0013-8000") == a.id


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+86 100 0000 0000"])
def test_invalid_phones_are_refused_or_ignored(db, corp, raw):
    """Is an invalid phone a 422-style error for link_phone, and ignored (not stored) in a link?"""
    a = factories.customer(corp)
    with pytest.raises(oneid.InvalidPhone) as err:
        oneid.link_phone(corp.id, a.id, raw, verified=True, source="mp_phone")
    assert err.value.status == 422 and "phone" in err.value.fields
    cid = _resolve(db, corp, [(EXT, "e1"), (PHONE, raw)])
    assert _identities(db, cid) == {(EXT, "e1")}


def test_verified_phone_joins_two_customers(db, corp):
    """When two customers prove the same phone, do they become one (the older)?"""
    a = factories.customer(corp, identities=[(EXT, "e1")])
    b = factories.customer(corp, identities=[(MP, "m1")])
    oneid.link_phone(corp.id, a.id, "13800138000", verified=True, source="mp_phone")
    survivor = oneid.link_phone(corp.id, b.id, "+8613800138000", verified=True, source="mp_phone")
    db.session.commit()
    assert survivor.id == a.id
    assert db.session.get(Customer, b.id).merged_into_id == a.id
    assert _identities(db, a.id) == {(EXT, "e1"), (MP, "m1"), (PHONE, "+8613800138000")}


def test_unverified_phone_held_elsewhere_only_suggests(db, corp):
    """Does a link carrying a phone someone else holds create a suggestion, not a merge?"""
    a = factories.customer(corp, identities=[(EXT, "e1")])
    oneid.link_phone(corp.id, a.id, "13800138000", verified=False, source="remark")
    db.session.commit()
    cid = _resolve(db, corp, [(EXT, "e2"), (PHONE, "13800138000")])
    assert cid != a.id and db.session.get(Customer, cid).merged_into_id is None
    suggestion = db.session.scalars(select(MergeSuggestion)).one()
    assert (suggestion.customer_a_id, suggestion.customer_b_id, suggestion.reason) == (a.id, cid, "same_phone")
    assert suggestion.status == SuggestionStatus.open and suggestion.evidence["phones"] == ["+8613800138000"]


def test_verified_phone_takes_over_from_an_unverified_holder(db, corp):
    """When a customer proves a phone another holds unverified, does the prover get it, with a suggestion?"""
    a = factories.customer(corp, identities=[(EXT, "e1")])
    b = factories.customer(corp, identities=[(MP, "m1")])
    oneid.link_phone(corp.id, a.id, "13800138000", verified=False, source="remark")
    assert oneid.link_phone(corp.id, b.id, "13800138000", verified=True, source="mp_phone").id == b.id
    db.session.commit()
    row = db.session.scalars(select(Identity).where(Identity.type == PHONE)).one()
    assert (row.customer_id, row.verified, row.source) == (b.id, True, "mp_phone")
    assert db.session.get(Customer, b.id).merged_into_id is None
    suggestion = db.session.scalars(select(MergeSuggestion)).one()
    assert (suggestion.customer_a_id, suggestion.customer_b_id, suggestion.reason) == (a.id, b.id, "same_phone")


def test_reverifying_own_phone_upgrades_it(db, corp):
    """Does a customer verifying the phone it holds unverified mark it verified, without suggestions?"""
    a = factories.customer(corp)
    oneid.link_phone(corp.id, a.id, "13800138000", verified=False, source="remark")
    oneid.link_phone(corp.id, a.id, "13800138000", verified=True, source="mp_phone")
    db.session.commit()
    assert db.session.scalars(select(Identity)).one().verified is True
    assert db.session.scalar(select(MergeSuggestion)) is None


def test_same_name_and_company_suggests(db, corp):
    """Does a new customer with the same name and company as another create a suggestion only?"""
    first = _resolve(db, corp, [(EXT, "e1")], name="王伟", corp_name="Acme")
    second = _resolve(db, corp, [(EXT, "e2")], name="王伟", corp_name="Acme")
    _resolve(db, corp, [(EXT, "e3")], name="王伟", corp_name="")  # no company: too weak
    assert second != first
    suggestion = db.session.scalars(select(MergeSuggestion)).one()
    assert (suggestion.customer_a_id, suggestion.customer_b_id, suggestion.reason) == (
        first,
        second,
        "same_name_company",
    )


def test_link_commits_and_retries(db, corp):
    """Does link() resolve in its own committed transaction and return the customer id?"""
    cid = oneid.link(corp.id, [(EXT, "e1"), (UNION, "u1")], "test")
    db.session.rollback()
    assert oneid.customer_id_for(corp.id, UNION, "u1") == cid


def test_customer_for_write_follows_merges(db, corp):
    """Does customer_for_write answer a merged id with its survivor, and 404 an unknown one?"""
    a = factories.customer(corp, identities=[(EXT, "e1")])
    b = factories.customer(corp, identities=[(MP, "m1")])
    _resolve(db, corp, [(EXT, "e1"), (MP, "m1")])
    assert oneid.customer_for_write(corp.id, b.id) == a.id
    with pytest.raises(oneid.NotFound):
        oneid.customer_for_write(corp.id, 999999)
