"""GET /customers/<id>/timeline: one list across merged ids, newest first, reps see their own."""

from datetime import timedelta

from sqlalchemy import literal, select

from app.models import AuditLog, IdentityType, utcnow
from app.services import audit, merge, timeline
from tests import factories

EXT = IdentityType.external_userid


def _world(db, corp):
    """Two records of one person, followed by two reps, merged, with an audit note."""
    now = utcnow()
    rep1, rep2 = factories.staff(corp, userid="rep1", name="Rep One"), factories.staff(corp, userid="rep2")
    a = factories.customer(corp, identities=[(EXT, "a")])
    b = factories.customer(corp, identities=[(EXT, "b")])
    factories.follow(corp, rep1, a, added_at=now - timedelta(days=3), state="expo")
    factories.follow(
        corp,
        rep2,
        b,
        added_at=now - timedelta(days=2),
        state="web",
        deleted_at=now - timedelta(days=1),
        status="deleted",
    )
    (record,) = merge.merge(corp.id, [a.id, b.id], actor="user:1", reason="same person")
    audit.record(corp.id, "user:1", "customer.note", "customer", a.id, reason="prefers WeChat calls")
    db.session.commit()
    return {"a": a.id, "b": b.id, "rep1": rep1, "rep2": rep2, "merge": record.id}


def _timeline(client, headers, customer_id, **params):
    return client.get(f"/api/v1/customers/{customer_id}/timeline", query_string=params, headers=headers)


def test_timeline_gathers_every_source_newest_first(db, corp, client, admin_headers):
    """Does the timeline of a merged customer hold both records' channel adds, the merge and audit notes?"""
    w = _world(db, corp)
    resp = _timeline(client, admin_headers, w["b"])  # the absorbed id answers too
    assert resp.status_code == 200, resp.json
    items = resp.json["items"]
    kinds = [i["kind"] for i in items]
    assert sorted(kinds) == sorted(["channel_add", "channel_add", "follow_ended", "merged", "customer.note"])
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    adds = {i["staff_userid"]: i for i in items if i["kind"] == "channel_add"}
    assert adds["rep1"]["detail"] == "expo" and adds["rep1"]["staff_name"] == "Rep One"
    assert adds["rep2"]["customer_id"] == w["a"]  # the relation moved to the survivor
    merged = next(i for i in items if i["kind"] == "merged")
    assert (merged["customer_id"], merged["ref_id"], merged["detail"], merged["actor"]) == (
        w["b"],
        w["merge"],
        "same person",
        "user:1",
    )
    assert next(i for i in items if i["kind"] == "customer.note")["detail"] == "prefers WeChat calls"


def test_unmerge_shows_on_both_timelines(db, corp, client, admin_headers):
    """After an unmerge, do both customers' timelines show the merge and its undoing, each with its own adds?"""
    w = _world(db, corp)
    merge.unmerge(corp.id, w["merge"], actor="user:1", reason="namesakes")
    db.session.commit()
    for cid, rep in ((w["a"], "rep1"), (w["b"], "rep2")):
        items = _timeline(client, admin_headers, cid).json["items"]
        assert {i["kind"] for i in items} >= {"merged", "unmerged"}
        assert {i["staff_userid"] for i in items if i["kind"] == "channel_add"} == {rep}


def test_rep_sees_their_own_entries(db, corp, client, api_auth):
    """Does a rep see their own channel add and the shared entries, but not another rep's add?"""
    w = _world(db, corp)
    headers = api_auth.headers("rep", staff_id=w["rep1"].id)
    items = _timeline(client, headers, w["a"]).json["items"]
    assert {i["staff_userid"] for i in items if i["staff_id"]} == {"rep1"}
    assert "merged" in {i["kind"] for i in items}
    stranger = api_auth.headers("rep", staff_id=factories.staff(corp).id)
    assert _timeline(client, stranger, w["a"]).status_code == 404


def test_timeline_pages_and_filters(db, corp, client, admin_headers):
    """Do page, per_page and kind narrow the timeline, with the total counted?"""
    w = _world(db, corp)
    first = _timeline(client, admin_headers, w["a"], per_page=2).json
    second = _timeline(client, admin_headers, w["a"], per_page=2, page=2).json
    assert first["total"] == 5 and len(first["items"]) == 2 and len(second["items"]) == 2
    assert not {(i["ref_type"], i["ref_id"]) for i in first["items"]} & {
        (i["ref_type"], i["ref_id"]) for i in second["items"]
    }
    only = _timeline(client, admin_headers, w["a"], kind="channel_add").json
    assert only["total"] == 2 and {i["kind"] for i in only["items"]} == {"channel_add"}
    assert _timeline(client, admin_headers, 999999).status_code == 404
    assert _timeline(client, admin_headers, w["a"], per_page=0).status_code == 422


def test_later_features_add_sources(db, corp, client, admin_headers):
    """Does a source registered by another feature appear in the timeline?"""
    w = _world(db, corp)

    def welcomes(corp_id, customer_ids):
        return select(
            AuditLog.created_at.label("at"),
            literal("welcome_sent").label("kind"),
            literal(w["a"]).label("customer_id"),
            literal(w["rep1"].id).label("staff_id"),
            literal("audit_log").label("ref_type"),
            AuditLog.id.label("ref_id"),
            literal("hello").label("detail"),
            literal("system").label("actor"),
        ).where(AuditLog.action == "customer.merge")

    timeline.source("test_welcome")(welcomes)
    try:
        kinds = [i["kind"] for i in _timeline(client, admin_headers, w["a"]).json["items"]]
    finally:
        del timeline.SOURCES["test_welcome"]
    assert "welcome_sent" in kinds
