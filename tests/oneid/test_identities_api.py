"""GET /identities/resolve, the merge-suggestion queue and the identity-conflict queue."""

from sqlalchemy import select

from app.models import AuditLog, Customer, IdentityType, MergeSuggestion
from app.services import oneid
from tests import factories

EXT, UNION, MP, PHONE = (
    IdentityType.external_userid,
    IdentityType.unionid,
    IdentityType.mp_openid,
    IdentityType.phone,
)


def _resolve(client, headers, type_, value):
    return client.get("/api/v1/identities/resolve", query_string={"type": type_, "value": value}, headers=headers)


def test_resolve_answers_the_customer(db, corp, client, admin_headers):
    """Does resolve answer the customer of an identity, with its source and time?"""
    a = factories.customer(corp, identities=[(EXT, "e1")])
    resp = _resolve(client, admin_headers, "external_userid", "e1")
    assert resp.status_code == 200
    assert resp.json["customer_id"] == a.id and resp.json["source"] == "test" and resp.json["created_at"]


def test_resolve_follows_merges_and_normalises_phones(db, corp, client, admin_headers):
    """Does an identity of a merged customer resolve to the survivor, and a phone in any spelling?"""
    a = factories.customer(corp, identities=[(EXT, "e1")])
    factories.customer(corp, identities=[(MP, "m1")])
    oneid.resolve_or_create(corp.id, [(EXT, "e1"), (MP, "m1")], "test")
    oneid.link_phone(corp.id, a.id, "13800138000", verified=True, source="mp_phone")
    db.session.commit()
    assert _resolve(client, admin_headers, "mp_openid", "m1").json["customer_id"] == a.id
    resp = _resolve(client, admin_headers, "phone", "+86 138 0013 8000")
    assert resp.json["customer_id"] == a.id and resp.json["value"] == "+8613800138000"


def test_resolve_errors(db, corp, client, admin_headers):
    """Are an unknown identity 404, an invalid phone 422 and an unknown type 422?"""
    assert _resolve(client, admin_headers, "unionid", "nobody").status_code == 404
    bad_phone = _resolve(client, admin_headers, "phone", "12345")
    assert bad_phone.status_code == 422 and "phone" in bad_phone.json["error"]["fields"]
    bad_type = _resolve(client, admin_headers, "email", "x@example.com")
    assert bad_type.status_code == 422 and "type" in bad_type.json["error"]["fields"]


def test_rep_resolves_only_their_customers(db, corp, client, api_auth):
    """Does a rep get 404 for another rep's customer and 200 for their own?"""
    mine, theirs = factories.staff(corp), factories.staff(corp)
    a = factories.customer(corp, identities=[(EXT, "mine")])
    b = factories.customer(corp, identities=[(EXT, "theirs")])
    factories.follow(corp, mine, a)
    factories.follow(corp, theirs, b)
    headers = api_auth.headers("rep", staff_id=mine.id)
    assert _resolve(client, headers, "external_userid", "mine").json["customer_id"] == a.id
    assert _resolve(client, headers, "external_userid", "theirs").status_code == 404


def _suggested_pair(db, corp):
    """Two customers with the same name and company (a weak signal)."""
    a = oneid.resolve_or_create(corp.id, [(EXT, "e1")], "test", name="王伟", corp_name="Acme").id
    b = oneid.resolve_or_create(corp.id, [(EXT, "e2")], "test", name="王伟", corp_name="Acme").id
    db.session.commit()
    return a, b


def test_suggestions_are_listed_and_accepted(db, corp, client, admin_headers):
    """Does accepting a suggestion merge the pair into the older customer, audited with the reason?"""
    a, b = _suggested_pair(db, corp)
    page = client.get("/api/v1/merge-suggestions", headers=admin_headers).json
    assert page["total"] == 1
    (item,) = page["items"]
    assert item["customer_ids"] == [a, b] and item["reason"] == "same_name_company" and item["status"] == "open"
    resp = client.post(
        f"/api/v1/merge-suggestions/{item['id']}/accept", json={"reason": "called them"}, headers=admin_headers
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["survivor_id"] == a and resp.json["merges"][0]["kind"] == "suggestion"
    assert db.session.get(Customer, b).merged_into_id == a
    row = db.session.get(MergeSuggestion, item["id"])
    assert row.status == "accepted" and row.decision_reason == "called them" and row.decided_by.startswith("user:")
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "customer.merge")).one()
    assert "called them" in entry.reason
    again = client.post(f"/api/v1/merge-suggestions/{item['id']}/accept", json={"reason": "x"}, headers=admin_headers)
    assert again.status_code == 409
    assert client.get("/api/v1/merge-suggestions", headers=admin_headers).json["total"] == 0


def test_rejected_suggestion_is_audited_and_not_made_again(db, corp, client, admin_headers):
    """Is a rejection audited with who and why, and is the pair not suggested again?"""
    a, b = _suggested_pair(db, corp)
    suggestion_id = db.session.scalar(select(MergeSuggestion.id))
    resp = client.post(
        f"/api/v1/merge-suggestions/{suggestion_id}/reject", json={"reason": "namesakes"}, headers=admin_headers
    )
    assert resp.status_code == 200 and resp.json["status"] == "rejected"
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "merge_suggestion.reject")).one()
    assert entry.reason == "namesakes" and entry.actor.startswith("user:") and entry.data["customer_ids"] == [a, b]
    oneid.link_phone(corp.id, a, "13800138000", verified=False, source="remark")
    oneid.link_phone(corp.id, b, "13800138000", verified=False, source="remark")
    db.session.commit()
    assert db.session.scalars(select(MergeSuggestion)).one().status == "rejected"
    rejected = client.get("/api/v1/merge-suggestions?status=rejected", headers=admin_headers).json
    assert [s["id"] for s in rejected["items"]] == [suggestion_id]


def test_suggestion_decisions_need_a_reason_and_an_admin(db, corp, client, admin_headers, api_auth):
    """Is a decision without a reason 422, on an unknown suggestion 404, and by a rep 403?"""
    _suggested_pair(db, corp)
    suggestion_id = db.session.scalar(select(MergeSuggestion.id))
    url = f"/api/v1/merge-suggestions/{suggestion_id}/reject"
    assert client.post(url, json={}, headers=admin_headers).status_code == 422
    assert (
        client.post("/api/v1/merge-suggestions/999999/accept", json={"reason": "x"}, headers=admin_headers).status_code
        == 404
    )
    rep = api_auth.headers("rep", staff_id=factories.staff(corp).id)
    assert client.post(url, json={"reason": "x"}, headers=rep).status_code == 403
    assert client.get("/api/v1/merge-suggestions", headers=rep).status_code == 403
    assert db.session.get(MergeSuggestion, suggestion_id).status == "open"


def test_a_strong_link_closes_the_suggestion(db, corp):
    """When the suggested pair is joined by a strong link, is the suggestion closed as merged?"""
    a, b = _suggested_pair(db, corp)
    oneid.resolve_or_create(corp.id, [(EXT, "e1"), (EXT, "e2")], "test")
    db.session.commit()
    row = db.session.scalars(select(MergeSuggestion)).one()
    assert row.status == "merged" and row.merge_id is not None


def test_conflicts_are_listed_and_dismissed(db, corp, client, admin_headers):
    """Are refused links listed for review, and can an admin dismiss one (audited)?"""
    a = factories.customer(corp, identities=[(EXT, "e1"), (UNION, "u1")])
    b = factories.customer(corp, identities=[(UNION, "u2")])
    oneid.resolve_or_create(corp.id, [(EXT, "e1"), (UNION, "u2")], "wecom_callback")
    db.session.commit()
    (item,) = client.get("/api/v1/identity-conflicts", headers=admin_headers).json["items"]
    assert item["kind"] == "unionid" and item["customer_ids"] == [a.id, b.id] and item["source"] == "wecom_callback"
    resp = client.post(
        f"/api/v1/identity-conflicts/{item['id']}/dismiss", json={"reason": "shared phone"}, headers=admin_headers
    )
    assert resp.status_code == 200 and resp.json["status"] == "dismissed"
    assert resp.json["resolution_reason"] == "shared phone"
    assert db.session.scalar(select(AuditLog.reason).where(AuditLog.action == "identity_conflict.dismiss")) == (
        "shared phone"
    )
    assert client.get("/api/v1/identity-conflicts", headers=admin_headers).json["total"] == 0
    again = client.post(f"/api/v1/identity-conflicts/{item['id']}/dismiss", json={"reason": "x"}, headers=admin_headers)
    assert again.status_code == 409


def test_manual_merge_closes_the_conflict(db, corp, client, admin_headers):
    """When an admin merges the customers of a conflict, is the conflict closed as merged?"""
    a = factories.customer(corp, identities=[(EXT, "e1"), (UNION, "u1")])
    b = factories.customer(corp, identities=[(UNION, "u2")])
    oneid.resolve_or_create(corp.id, [(EXT, "e1"), (UNION, "u2")], "wecom_callback")
    db.session.commit()
    resp = client.post("/api/v1/customers/merge", json={"ids": [a.id, b.id], "reason": "ok"}, headers=admin_headers)
    assert resp.status_code == 201
    merged = client.get("/api/v1/identity-conflicts?status=merged", headers=admin_headers).json
    assert merged["total"] == 1
