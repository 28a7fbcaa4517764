from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from app.models import Base, CallbackEvent, Corp, Identity, IdentityType, Staff
from tests import factories


def test_every_business_table_carries_a_corp_id():
    """Does every business table have a corp_id, so several corps can share a deployment?"""
    exempt = {"corp", "api_token", "follow_tag"}  # the tenant itself; rows reached only through a scoped parent
    missing = [t.name for t in Base.metadata.sorted_tables if t.name not in exempt and "corp_id" not in t.c]
    assert missing == []


def test_duplicate_identity_is_refused(db, corp):
    """Can the same (type, value) identity point at two customers of one corp?"""
    a = factories.customer(corp, identities=[("unionid", "u-1")])
    b = factories.customer(corp)
    db.session.add(Identity(corp_id=corp.id, customer_id=b.id, type=IdentityType.unionid, value="u-1"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert [i.value for i in db.session.get(type(a), a.id).identities] == ["u-1"]


def test_same_identity_may_exist_in_two_corps(db, corp):
    """Is identity uniqueness scoped per corp?"""
    other = Corp(wecom_corp_id="ww_other")
    db.session.add(other)
    db.session.commit()
    factories.customer(corp, identities=[("external_userid", "wm-1")])
    factories.customer(other, identities=[("external_userid", "wm-1")])
    assert db.session.query(Identity).count() == 2


def test_staff_userid_unique_per_corp(db, corp):
    """Can two staff rows of one corp share a WeCom userid?"""
    factories.staff(corp, userid="zhangsan")
    db.session.add(Staff(corp_id=corp.id, userid="zhangsan"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_follow_relation_unique_per_pair(db, corp):
    """Can a rep follow the same customer through two relation rows?"""
    s, c = factories.staff(corp), factories.customer(corp)
    factories.follow(corp, s, c)
    with pytest.raises(IntegrityError):
        factories.follow(corp, s, c)
    db.session.rollback()


def test_callback_dedupe_key_is_unique(db, corp):
    """Can the same callback event be stored twice?"""
    db.session.add(CallbackEvent(corp_id=corp.id, dedupe_key="k", payload={}))
    db.session.commit()
    db.session.add(CallbackEvent(corp_id=corp.id, dedupe_key="k", payload={}))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_timestamps_come_back_timezone_aware(db, corp):
    """Are stored timestamps read back as aware UTC datetimes?"""
    s = factories.staff(corp, resigned_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    db.session.expire_all()
    got = db.session.get(Staff, s.id).resigned_at
    assert got == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert got.tzinfo is not None


def test_naive_datetimes_are_refused(db, corp):
    """Does a naive datetime fail loudly instead of being stored in an unknown zone?"""
    db.session.add(Staff(corp_id=corp.id, userid="naive", resigned_at=datetime(2026, 1, 1)))  # noqa: DTZ001
    with pytest.raises(Exception, match="naive"):
        db.session.commit()
    db.session.rollback()
