"""POST /customers/merge and /customers/<id>/unmerge: every fact moves, and comes back exactly."""

from datetime import timedelta

import pytest
from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint, select, text

from app.models import AuditLog, Base, Customer, FollowRelation, FollowStatus, IdentityType, MergeRecord, utcnow
from app.services import merge, oneid
from tests import factories
from tests.oneid.facts import snapshot

EXT, UNION, MP = IdentityType.external_userid, IdentityType.unionid, IdentityType.mp_openid


@pytest.fixture
def pair(db, corp):
    """Two records of one person: both followed by rep1 (a unique-constraint collision), the
    newer also by rep2, with tags, remarks and channels."""
    rep1, rep2 = factories.staff(corp, userid="rep1"), factories.staff(corp, userid="rep2")
    vip, expo, cold = factories.tag(corp, "vip"), factories.tag(corp, "expo"), factories.tag(corp, "cold")
    now = utcnow()
    older = factories.customer(corp, name="Wang", identities=[(EXT, "e-old")], first_channel="web", last_channel="web")
    newer = factories.customer(
        corp, name="王", corp_name="Acme", identities=[(UNION, "u1"), (MP, "m1")], last_channel="expo"
    )
    f_old = factories.follow(
        corp,
        rep1,
        older,
        tags=[vip],
        added_at=now - timedelta(days=3),
        state="web",
        status=FollowStatus.deleted,
        deleted_at=now - timedelta(days=1),
    )
    f_new = factories.follow(
        corp, rep1, newer, tags=[expo, vip], remark="Wang Acme", added_at=now - timedelta(days=2), state="expo"
    )
    f_rep2 = factories.follow(corp, rep2, newer, tags=[cold], added_at=now - timedelta(days=1), state="expo")
    return {
        "older": older.id,
        "newer": newer.id,
        "rep1": rep1,
        "rep2": rep2,
        "f_old": f_old.id,
        "f_new": f_new.id,
        "f_rep2": f_rep2.id,
    }


def _merge(client, headers, ids, reason="same person, checked by phone"):
    return client.post("/api/v1/customers/merge", json={"ids": ids, "reason": reason}, headers=headers)


def test_merge_moves_every_fact_to_the_older_customer(db, client, admin_headers, pair):
    """After a merge, does the older customer hold every identity, relation, tag and channel?"""
    resp = _merge(client, admin_headers, [pair["newer"], pair["older"]])
    assert resp.status_code == 201, resp.json
    assert resp.json["survivor_id"] == pair["older"]
    (record,) = resp.json["merges"]
    assert record["absorbed_id"] == pair["newer"] and record["kind"] == "manual" and record["folded"] == 1
    assert record["moved"] == {"identity.customer_id": 2, "follow_relation.customer_id": 1}

    detail = client.get(f"/api/v1/customers/{pair['newer']}", headers=admin_headers).json
    assert detail["id"] == pair["older"]  # the old id answers with the survivor
    assert {(i["type"], i["value"]) for i in detail["identities"]} == {
        ("external_userid", "e-old"),
        ("unionid", "u1"),
        ("mp_openid", "m1"),
    }
    follows = {f["staff_userid"]: f for f in detail["follows"]}
    assert set(follows) == {"rep1", "rep2"}
    # rep1 followed both: one relation, live, with both tag sets and the remark it lacked.
    assert follows["rep1"]["id"] == pair["f_old"] and follows["rep1"]["status"] == "active"
    assert {t["name"] for t in follows["rep1"]["tags"]} == {"vip", "expo"}
    assert follows["rep1"]["remark"] == "Wang Acme" and follows["rep1"]["state"] == "web"
    assert detail["corp_name"] == "Acme" and detail["name"] == "Wang"
    assert (detail["first_channel"], detail["last_channel"]) == ("web", "expo")

    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "customer.merge")).one()
    assert entry.actor.startswith("user:") and entry.reason == "same person, checked by phone"
    assert entry.data["absorbed_id"] == pair["newer"]


def test_unmerge_restores_every_fact(db, client, admin_headers, pair):
    """Does unmerge put back exactly what the merge moved, folded and filled, and audit it?"""
    ids = [pair["older"], pair["newer"]]
    before = snapshot(db, ids)
    merge_id = _merge(client, admin_headers, ids).json["merges"][0]["id"]
    assert snapshot(db, ids) != before
    resp = client.post(
        f"/api/v1/customers/{pair['newer']}/unmerge",
        json={"merge_id": merge_id, "reason": "different people after all"},
        headers=admin_headers,
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "undone" and resp.json["undo_reason"] == "different people after all"
    assert snapshot(db, ids) == before
    assert client.get(f"/api/v1/customers/{pair['newer']}", headers=admin_headers).json["id"] == pair["newer"]
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "customer.unmerge")).one()
    assert entry.reason == "different people after all" and entry.data["merge_id"] == merge_id


def test_facts_added_after_the_merge_stay_with_the_survivor(db, client, admin_headers, pair, corp):
    """Does an identity learnt after the merge stay on the survivor when the merge is undone?"""
    merge_id = _merge(client, admin_headers, [pair["older"], pair["newer"]]).json["merges"][0]["id"]
    assert oneid.resolve_or_create(corp.id, [(MP, "m1"), (IdentityType.oa_openid, "oa1")], "test").id == pair["older"]
    db.session.commit()
    client.post(
        f"/api/v1/customers/{pair['older']}/unmerge",
        json={"merge_id": merge_id, "reason": "undo"},
        headers=admin_headers,
    )
    assert oneid.customer_id_for(corp.id, IdentityType.oa_openid, "oa1") == pair["older"]
    assert oneid.customer_id_for(corp.id, MP, "m1") == pair["newer"]


def test_merges_are_listed_per_customer(client, admin_headers, pair):
    """Does GET /customers/<id>/merges list the customer's merges, for either id?"""
    merge_id = _merge(client, admin_headers, [pair["older"], pair["newer"]]).json["merges"][0]["id"]
    for cid in (pair["older"], pair["newer"]):
        page = client.get(f"/api/v1/customers/{cid}/merges", headers=admin_headers).json
        assert [m["id"] for m in page["items"]] == [merge_id] and page["total"] == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"ids": [1], "reason": "x"}, "ids"),
        ({"ids": [1, 2]}, "reason"),
        ({"ids": [1, 2], "reason": ""}, "reason"),
        ({"ids": ["a", 2], "reason": "x"}, "ids"),
        ({"ids": list(range(1, 30)), "reason": "x"}, "ids"),
    ],
)
def test_invalid_merge_requests_are_422(db, client, admin_headers, body, field):
    """Is a malformed merge request a 422 naming the field, with nothing written?"""
    resp = client.post("/api/v1/customers/merge", json=body, headers=admin_headers)
    assert resp.status_code == 422 and field in resp.json["error"]["fields"]
    assert db.session.scalar(select(MergeRecord)) is None


def test_merge_refusals(db, client, admin_headers, api_auth, pair):
    """Are an unknown id (404), one customer twice (409) and a rep (403) refused?"""
    assert _merge(client, admin_headers, [pair["older"], 999999]).status_code == 404
    assert _merge(client, admin_headers, [pair["older"], pair["older"]]).status_code == 409
    rep_headers = api_auth.headers("rep", staff_id=pair["rep1"].id)
    assert _merge(client, rep_headers, [pair["older"], pair["newer"]]).status_code == 403
    assert db.session.scalar(select(MergeRecord)) is None


def test_unmerge_refusals(db, client, admin_headers, pair, corp):
    """Are a merge of another customer (404), an unknown merge (404) and an undone merge (409) refused?"""
    third = factories.customer(corp, identities=[(EXT, "e-3")])
    merge_id = _merge(client, admin_headers, [pair["older"], pair["newer"]]).json["merges"][0]["id"]

    def unmerge(customer_id, merge_id):
        body = {"merge_id": merge_id, "reason": "undo"}
        return client.post(f"/api/v1/customers/{customer_id}/unmerge", json=body, headers=admin_headers)

    assert unmerge(third.id, merge_id).status_code == 404
    assert unmerge(pair["older"], merge_id + 100).status_code == 404
    assert unmerge(pair["older"], merge_id).status_code == 200
    again = unmerge(pair["older"], merge_id)
    assert again.status_code == 409 and "undone already" in again.json["error"]["message"]


def test_unmerge_waits_for_the_later_merge(db, client, admin_headers, corp):
    """When the survivor of a merge was merged into another since, must that later merge be undone first?"""
    a = factories.customer(corp, identities=[(EXT, "a")])
    b = factories.customer(corp, identities=[(EXT, "b")])
    c = factories.customer(corp, identities=[(EXT, "c")])
    first = _merge(client, admin_headers, [b.id, c.id]).json["merges"][0]["id"]  # c into b
    second = _merge(client, admin_headers, [a.id, b.id]).json["merges"][0]["id"]  # b into a
    resp = client.post(
        f"/api/v1/customers/{b.id}/unmerge", json={"merge_id": first, "reason": "undo"}, headers=admin_headers
    )
    assert resp.status_code == 409 and f"merge {second}" in resp.json["error"]["message"]
    for customer_id, merge_id in ((a.id, second), (b.id, first)):
        resp = client.post(
            f"/api/v1/customers/{customer_id}/unmerge",
            json={"merge_id": merge_id, "reason": "undo"},
            headers=admin_headers,
        )
        assert resp.status_code == 200, resp.json
    assert {oneid.customer_id_for(corp.id, EXT, v) for v in "abc"} == {a.id, b.id, c.id}


@pytest.fixture
def later_table(db):
    """A table another feature might add later: a customer_id column, a unique constraint and
    a partial unique index (one open row per customer)."""
    table = Table(
        "oid_test_note",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("corp_id", Integer),
        Column("customer_id", ForeignKey("customer.id")),
        Column("staff_id", Integer),
        Column("status", String(8)),
        Column("body", String(64)),
        UniqueConstraint("customer_id", "staff_id"),
        Index("uq_oid_test_note_open", "customer_id", unique=True, postgresql_where=text("status = 'open'")),
    )
    table.create(db.engine)
    yield table
    db.session.rollback()
    table.drop(db.engine)
    Base.metadata.remove(table)


def test_tables_added_later_are_moved_and_restored(db, corp, later_table):
    """Does a merge move rows of a table it was never told about (leaving unique twins), and unmerge restore them?"""
    a = factories.customer(corp, identities=[(EXT, "a")])
    b = factories.customer(corp, identities=[(EXT, "b")])
    db.session.execute(
        later_table.insert(),
        [
            {"id": 1, "corp_id": corp.id, "customer_id": a.id, "staff_id": 1, "status": "open", "body": "a's"},
            {"id": 2, "corp_id": corp.id, "customer_id": b.id, "staff_id": 1, "status": "done", "body": "twin"},
            {"id": 3, "corp_id": corp.id, "customer_id": b.id, "staff_id": 2, "status": "done", "body": "b's"},
            {"id": 4, "corp_id": corp.id, "customer_id": b.id, "staff_id": 3, "status": "open", "body": "open"},
        ],
    )
    db.session.commit()
    before = snapshot(db, [a.id, b.id])
    (record,) = merge.merge(corp.id, [a.id, b.id], actor="test", reason="test")
    db.session.commit()
    owners = dict(db.session.execute(select(later_table.c.id, later_table.c.customer_id)).all())
    # 2 collides on (customer, staff), 4 on the one open row; 3 is free to move.
    assert owners == {1: a.id, 2: b.id, 3: a.id, 4: b.id}
    assert record.moved["oid_test_note.customer_id"]["rows"] == [[3]]
    assert record.kept == {"oid_test_note.customer_id": [[2], [4]]}
    merge.unmerge(corp.id, record.id, actor="test", reason="test")
    db.session.commit()
    assert snapshot(db, [a.id, b.id]) == before


def test_merge_keeps_the_older_even_when_ids_disagree(db, corp):
    """Is "older" the earlier created customer, not the smaller id?"""
    young = factories.customer(corp, identities=[(EXT, "young")])
    old = factories.customer(corp, identities=[(EXT, "old")])
    db.session.get(Customer, old.id).created_at = utcnow() - timedelta(days=30)
    db.session.commit()
    (record,) = merge.merge(corp.id, [young.id, old.id], actor="test", reason="test")
    assert (record.survivor_id, record.absorbed_id) == (old.id, young.id)


def test_follow_relation_ids_survive_a_merge(db, client, admin_headers, pair):
    """Do relations keep their ids through a merge (so references to them stay valid)?"""
    _merge(client, admin_headers, [pair["older"], pair["newer"]])
    moved = db.session.get(FollowRelation, pair["f_rep2"])
    assert moved.customer_id == pair["older"]
    # The folded twin stays, untouched, on the absorbed customer.
    assert db.session.get(FollowRelation, pair["f_new"]).customer_id == pair["newer"]


def test_a_merge_blocked_by_a_long_transaction_is_409(app, db, client, admin_headers, corp):
    """When another transaction holds one of the customers too long, is the merge a 409 with nothing written?"""
    a = factories.customer(corp, identities=[(EXT, "a")])
    b = factories.customer(corp, identities=[(EXT, "b")])
    app.config["ONEID_API_LOCK_TIMEOUT_MS"] = 200
    with db.engine.connect() as other:  # e.g. a callback still working on customer a
        other.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": oneid.customer_key(corp.id, a.id)})
        resp = _merge(client, admin_headers, [a.id, b.id])
        other.rollback()
    assert resp.status_code == 409 and resp.json["error"]["code"] == "busy"
    assert db.session.scalar(select(MergeRecord)) is None
    assert _merge(client, admin_headers, [a.id, b.id]).status_code == 201
