"""Editing a relation's tags from the 360 view: WeCom's mark_tag first (the simulator over HTTP),
then our copy; a rep only on their own relation; bad input changes nothing anywhere."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.errors import ApiError
from app.models import AuditLog, FollowRelation, Tag
from app.services import customer360
from app.services.contact_codes import tags as code_tags
from wecom.client import contact_client


@pytest.fixture
def setup(world):
    """王五 followed by zhangwei (with the code's expo tag) and lina; two more corp tags."""
    customer_id, external_userid = world.scan(world.code("zhangwei"), "王五")
    world.sim.control.scan(
        config_id=world.code("lina", channel="web", tags=())["config_id"], external_userid=external_userid
    )
    world.settle()
    ids = code_tags.ensure(world.corp.id, [{"group_name": "等级", "name": "VIP"}, {"group_name": "等级", "name": "A"}])
    world.db.session.commit()
    tags = {t.name: t for t in world.db.session.scalars(select(Tag).where(Tag.wecom_tag_id.in_(ids + ["x"])))}
    expo = world.db.session.scalar(select(Tag).where(Tag.name == "expo-2026"))
    return {
        "customer_id": customer_id,
        "external_userid": external_userid,
        "vip": tags["VIP"],
        "a": tags["A"],
        "expo": expo,
    }


def _wecom_tags(world, userid, external_userid) -> set[str]:
    follows = world.sim.control.state("follows")["follows"]
    follow = next(f for f in follows if f["userid"] == userid and f["external_userid"] == external_userid)
    return set(follow["tag_id"])


def _our_tags(world, userid, customer_id) -> set[str]:
    world.db.session.expire_all()
    relation = world.db.session.scalar(
        select(FollowRelation).where(
            FollowRelation.customer_id == customer_id, FollowRelation.staff_id == world.staff(userid).id
        )
    )
    return {t.name for t in relation.tags}


def test_a_rep_adds_and_removes_tags_in_wecom_and_here(world, setup):
    """Do a rep's added and removed tags reach WeCom's relation and ours, with an audit entry?"""
    rep = world.principal("rep", "zhangwei")
    customer360.set_tags(rep, setup["customer_id"], [setup["vip"].id, setup["a"].id], [setup["expo"].id])
    assert _wecom_tags(world, "zhangwei", setup["external_userid"]) == {
        setup["vip"].wecom_tag_id,
        setup["a"].wecom_tag_id,
    }
    assert _our_tags(world, "zhangwei", setup["customer_id"]) == {"VIP", "A"}
    assert _our_tags(world, "lina", setup["customer_id"]) == set()
    entry = world.db.session.scalar(select(AuditLog).where(AuditLog.action == "customer.tags"))
    assert entry.data["added"] == ["VIP", "A"] and entry.data["removed"] == ["expo-2026"]


def test_a_rep_cannot_tag_another_reps_relation(world, setup):
    """Can a rep change the tags of a colleague's relation, or of a customer they do not follow?"""
    rep = world.principal("rep", "zhangwei")
    with pytest.raises(ApiError) as err:
        customer360.set_tags(rep, setup["customer_id"], [setup["vip"].id], [], staff_id=world.staff("lina").id)
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        customer360.set_tags(world.principal("rep", "wangfang"), setup["customer_id"], [setup["vip"].id], [])
    assert err.value.status == 404
    assert _wecom_tags(world, "lina", setup["external_userid"]) == set()


def test_an_admin_names_the_relation(world, setup):
    """With two reps following, must an admin name the rep, and does the named relation change?"""
    admin = world.principal("admin")
    with pytest.raises(ApiError) as err:
        customer360.set_tags(admin, setup["customer_id"], [setup["vip"].id], [])
    assert err.value.status == 422 and "staff_id" in err.value.fields
    customer360.set_tags(admin, setup["customer_id"], [setup["vip"].id], [], staff_id=world.staff("lina").id)
    assert _wecom_tags(world, "lina", setup["external_userid"]) == {setup["vip"].wecom_tag_id}


@pytest.mark.parametrize(
    ("add", "remove", "field"),
    [([], [], "add_tag_ids"), ([999999], [], "add_tag_ids"), (["x"], [], "add_tag_ids"), ([1], [1], "remove_tag_ids")],
)
def test_bad_edits_are_422_and_change_nothing(world, setup, add, remove, field):
    """Are an empty edit, an unknown tag, a non-integer and a tag both added and removed refused with a field error?"""
    rep = world.principal("rep", "zhangwei")
    add = [setup["vip"].id if a == 1 else a for a in add]
    remove = [setup["vip"].id if r == 1 else r for r in remove]
    with pytest.raises(ApiError) as err:
        customer360.set_tags(rep, setup["customer_id"], add, remove)
    assert err.value.status == 422 and field in err.value.fields
    assert _our_tags(world, "zhangwei", setup["customer_id"]) == {"expo-2026"}
    assert _wecom_tags(world, "zhangwei", setup["external_userid"]) == {setup["expo"].wecom_tag_id}


def test_a_tag_deleted_in_wecom_changes_nothing(world, setup):
    """When WeCom no longer has the tag, is the edit refused (422) with our copy left as it was?"""
    contact_client().external_contact.del_corp_tag(tag_id=[setup["vip"].wecom_tag_id])
    with pytest.raises(ApiError) as err:
        customer360.set_tags(
            world.principal("rep", "zhangwei"), setup["customer_id"], [setup["vip"].id], [setup["expo"].id]
        )
    assert err.value.status == 422
    assert _our_tags(world, "zhangwei", setup["customer_id"]) == {"expo-2026"}
    assert world.db.session.scalar(select(AuditLog.id).where(AuditLog.action == "customer.tags")) is None
