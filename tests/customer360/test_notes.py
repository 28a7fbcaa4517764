"""Notes on a customer: who may add and edit them, validation, the audit, and OneID merges."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.errors import ApiError
from app.models import AuditLog, CustomerNote
from app.services import customer360, merge, timeline


@pytest.fixture
def shared_customer(world):
    """王五, followed by zhangwei and by lina (two scans of the same WeChat user)."""
    customer_id, external_userid = world.scan(world.code("zhangwei"), "王五")
    world.sim.control.scan(
        config_id=world.code("lina", channel="web").get("config_id"), external_userid=external_userid
    )
    world.settle()
    return customer_id


def _status(call) -> int:
    with pytest.raises(ApiError) as err:
        call()
    return err.value.status


def test_add_note_is_trimmed_audited_and_on_the_timeline(world, shared_customer):
    """Is a rep's note stored trimmed, audited on the customer and shown on its timeline?"""
    rep = world.principal("rep", "zhangwei")
    note = customer360.add_note(rep, shared_customer, "\n  Call back after the expo  \n")
    assert note.body == "Call back after the expo" and note.author_staff_id == world.staff("zhangwei").id
    entry = world.db.session.scalar(select(AuditLog).where(AuditLog.action == "customer.note.add"))
    assert entry.target_id == str(shared_customer) and entry.data == {"note_id": note.id}
    kinds = [e.kind for e in timeline.for_customer(rep, shared_customer, page=1, per_page=50).items]
    assert "customer.note.add" in kinds


@pytest.mark.parametrize("body", ["", "   ", "x" * 2001, None])
def test_bad_bodies_are_422_and_store_nothing(world, shared_customer, body):
    """Is an empty, blank, too long or missing body refused with a field error, storing nothing?"""
    rep = world.principal("rep", "zhangwei")
    with pytest.raises(ApiError) as err:
        customer360.add_note(rep, shared_customer, body)
    assert err.value.status == 422 and "body" in err.value.fields
    assert world.db.session.scalar(select(func.count()).select_from(CustomerNote)) == 0


def test_only_the_author_or_an_admin_edits(world, shared_customer):
    """May the author and an admin edit a note, another follower not (403), an outsider not even see it (404)?"""
    author = world.principal("rep", "zhangwei")
    note = customer360.add_note(author, shared_customer, "first")
    colleague = world.principal("rep", "lina")
    outsider = world.principal("rep", "wangfang")
    assert _status(lambda: customer360.edit_note(colleague, note.id, "mine now")) == 403
    assert _status(lambda: customer360.edit_note(outsider, note.id, "mine now")) == 404
    assert _status(lambda: customer360.add_note(outsider, shared_customer, "hello")) == 404
    assert customer360.edit_note(author, note.id, "second").body == "second"
    assert customer360.edit_note(world.principal("admin"), note.id, "third").body == "third"
    assert _status(lambda: customer360.edit_note(author, note.id, "")) == 422
    world.db.session.expire_all()
    assert world.db.session.get(CustomerNote, note.id).body == "third"
    edits = world.db.session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "customer.note.edit")
    )
    assert edits == 2
    view = customer360.view(colleague, shared_customer)
    assert [(n["body"], n["can_edit"]) for n in view["notes"]] == [("third", False)]


def test_notes_follow_a_merge_and_an_unmerge(world):
    """When two customers merge, do both notes show on the survivor, and go back on unmerge?"""
    admin = world.principal("admin")
    a, _ = world.scan(world.code("zhangwei"), "王五")
    b, _ = world.scan(world.code("lina", channel="web"), "王五 (web)")
    customer360.add_note(admin, a, "note on a")
    customer360.add_note(admin, b, "note on b")
    result = merge.merge_as(admin, [a, b], "same person")
    survivor = result.survivor_id
    assert {n["body"] for n in customer360.view(admin, b)["notes"]} == {"note on a", "note on b"}
    merge.unmerge_as(admin, survivor, result.merges[0].id, "not the same")
    assert [n["body"] for n in customer360.view(admin, b)["notes"]] == ["note on b"]
