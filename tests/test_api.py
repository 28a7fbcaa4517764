"""The admin API's listing, detail, visibility and error behaviour."""

from app.models import FollowStatus
from tests import factories


def _names(resp):
    return [c["name"] for c in resp.json["items"]]


def test_customers_paginate(client, admin_headers, corp):
    """Do customer lists paginate with a total?"""
    for i in range(5):
        factories.customer(corp, name=f"c{i}")
    resp = client.get("/api/v1/customers?page=2&per_page=2", headers=admin_headers)
    assert resp.status_code == 200
    assert resp.json["total"] == 5 and resp.json["page"] == 2 and len(resp.json["items"]) == 2


def test_customer_filters(client, admin_headers, corp):
    """Do the staff, tag, channel and text filters narrow the list?"""
    a, b = factories.staff(corp, userid="alice"), factories.staff(corp, userid="bob")
    vip = factories.tag(corp, "vip")
    wang = factories.customer(corp, name="Wang", first_channel="expo", identities=[("phone", "+8613800000000")])
    li = factories.customer(corp, name="Li", last_channel="web")
    factories.follow(corp, a, wang, tags=[vip])
    factories.follow(corp, b, li, remark="big buyer")

    def get(qs):
        return _names(client.get(f"/api/v1/customers?{qs}", headers=admin_headers))

    assert get("staff=alice") == ["Wang"]
    assert get(f"tag={vip.id}") == ["Wang"]
    assert get("channel=web") == ["Li"]
    assert get("q=buyer") == ["Li"]
    assert get("q=%2B8613800000000") == ["Wang"]
    assert get("q=wan") == ["Wang"]


def test_customer_detail(client, admin_headers, corp):
    """Does the detail show identities, follow relations and tags?"""
    s = factories.staff(corp, userid="alice", name="Alice")
    vip = factories.tag(corp, "vip")
    c = factories.customer(corp, name="Wang", identities=[("external_userid", "wm1"), ("unionid", "u1")])
    factories.follow(corp, s, c, tags=[vip], remark="r", state="expo", add_way=1)
    body = client.get(f"/api/v1/customers/{c.id}", headers=admin_headers).json
    assert [(i["type"], i["value"]) for i in body["identities"]] == [("external_userid", "wm1"), ("unionid", "u1")]
    assert body["follows"][0]["staff_userid"] == "alice" and body["follows"][0]["state"] == "expo"
    assert [t["name"] for t in body["tags"]] == ["vip"]


def test_merged_customer_id_resolves_to_the_survivor(client, db, admin_headers, corp):
    """Does an old id of a merged customer answer with the surviving customer?"""
    survivor = factories.customer(corp, name="Survivor")
    merged = factories.customer(corp, name="Merged", merged_into_id=survivor.id)
    body = client.get(f"/api/v1/customers/{merged.id}", headers=admin_headers).json
    assert body["id"] == survivor.id
    assert _names(client.get("/api/v1/customers", headers=admin_headers)) == ["Survivor"]


def test_unknown_customer_is_404(client, admin_headers):
    """Does an unknown customer id answer 404 in the envelope?"""
    resp = client.get("/api/v1/customers/999999", headers=admin_headers)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"


def test_rep_sees_only_their_customers(client, api_auth, corp):
    """Can a rep list or open another rep's customer?"""
    mine, other = factories.staff(corp), factories.staff(corp)
    c1, c2 = factories.customer(corp, name="Mine"), factories.customer(corp, name="Theirs")
    factories.follow(corp, mine, c1)
    factories.follow(corp, other, c2)
    headers = api_auth.headers("rep", staff_id=mine.id)
    assert _names(client.get("/api/v1/customers", headers=headers)) == ["Mine"]
    assert client.get(f"/api/v1/customers/{c1.id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/customers/{c2.id}", headers=headers).status_code == 404


def test_rep_still_sees_a_customer_who_deleted_them(client, api_auth, corp):
    """Does a rep keep seeing a customer they once followed (to act on a lost customer)?"""
    rep = factories.staff(corp)
    c = factories.customer(corp, name="Gone")
    factories.follow(corp, rep, c, status=FollowStatus.deleted)
    headers = api_auth.headers("rep", staff_id=rep.id)
    assert _names(client.get("/api/v1/customers", headers=headers)) == ["Gone"]


def test_rep_does_not_see_other_reps_relations_on_a_shared_customer(client, api_auth, corp):
    """On a customer two reps share, does a rep see only their own relation?"""
    mine, other = factories.staff(corp), factories.staff(corp)
    c = factories.customer(corp)
    factories.follow(corp, mine, c, remark="mine")
    factories.follow(corp, other, c, remark="secret")
    body = client.get(f"/api/v1/customers/{c.id}", headers=api_auth.headers("rep", staff_id=mine.id)).json
    assert [f["remark"] for f in body["follows"]] == ["mine"]


def test_customers_of_another_corp_are_invisible(client, db, admin_headers, corp):
    """Can an admin see customers of another corp in the same deployment?"""
    from app.models import Corp

    other = Corp(wecom_corp_id="ww_other")
    db.session.add(other)
    db.session.commit()
    theirs = factories.customer(other, name="Other corp")
    assert _names(client.get("/api/v1/customers", headers=admin_headers)) == []
    assert client.get(f"/api/v1/customers/{theirs.id}", headers=admin_headers).status_code == 404


def test_staff_list_and_filters(client, admin_headers, corp):
    """Does the staff list filter by status and text?"""
    factories.staff(corp, userid="alice", name="Alice")
    factories.staff(corp, userid="bob", name="Bob", status="resigned")
    names = [s["userid"] for s in client.get("/api/v1/staff?status=resigned", headers=admin_headers).json["items"]]
    assert names == ["bob"]
    names = [s["userid"] for s in client.get("/api/v1/staff?q=ali", headers=admin_headers).json["items"]]
    assert names == ["alice"]


def test_invalid_query_gives_field_errors(client, admin_headers):
    """Do invalid query parameters answer 422 with per-field errors?"""
    resp = client.get("/api/v1/customers?page=0&per_page=abc&tag=x", headers=admin_headers)
    assert resp.status_code == 422
    assert set(resp.json["error"]["fields"]) == {"page", "per_page", "tag"}
    resp = client.get("/api/v1/staff?status=fired&surprise=1", headers=admin_headers)
    assert resp.status_code == 422
    assert set(resp.json["error"]["fields"]) == {"status", "surprise"}


def test_malformed_body_is_400(client, corp):
    """Does a body that is not a JSON object answer 400, not 500?"""
    for body in ("not json", "[1, 2]", ""):
        resp = client.post("/api/v1/auth/token", data=body, content_type="application/json")
        assert resp.status_code == 400, body
        assert resp.json["error"]["code"] == "bad_request"


def test_missing_fields_are_422(client, corp):
    """Does a body missing required fields answer 422 naming them?"""
    resp = client.post("/api/v1/auth/token", json={"username": ""})
    assert resp.status_code == 422
    assert set(resp.json["error"]["fields"]) == {"username", "password"}


def test_unknown_route_and_method_use_the_envelope(client):
    """Do 404 and 405 answer in the JSON error envelope?"""
    resp = client.get("/api/v1/nope")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    resp = client.put("/api/v1/customers")
    assert resp.status_code == 405 and "error" in resp.json
