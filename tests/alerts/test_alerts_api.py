"""The alerts API: rules CRUD with validation, alerts filtered and scoped by role, rep
preferences and the corp's alert settings."""

import pytest
from sqlalchemy import func, select

from app.models import AlertKind, AlertRule
from app.services.alerts import rules
from tests import factories


@pytest.fixture
def reps(corp):
    return factories.staff(corp, userid="rep-a", name="A"), factories.staff(corp, userid="rep-b", name="B")


def _rule_id(client, headers, kind):
    listed = client.get("/api/v1/alert-rules", headers=headers).json
    return next(r["id"] for r in listed if r["kind"] == kind and r["default"])


def test_defaults_are_shipped_and_readable_by_reps(client, admin_headers, api_auth, reps):
    """Does every corp get one default rule per kind, listed to admins and reps alike?"""
    listed = client.get("/api/v1/alert-rules", headers=admin_headers).json
    assert sorted(r["kind"] for r in listed) == sorted(k.value for k in AlertKind)
    assert all(r["default"] and r["enabled"] for r in listed)
    lost = next(r for r in listed if r["kind"] == "lost_customer")
    assert lost["audience"] == "rep_and_admins" and lost["window_seconds"] == 86400
    rep_view = client.get("/api/v1/alert-rules", headers=api_auth.headers("rep", staff_id=reps[0].id)).json
    assert [r["id"] for r in rep_view] == [r["id"] for r in listed]


def test_create_update_delete_a_rule(client, admin_headers):
    """Can an admin add a rule (kind defaults filled in), change it and delete it?"""
    created = client.post(
        "/api/v1/alert-rules",
        headers=admin_headers,
        json={"kind": "content_read", "name": "Long reads", "params": {"min_seconds": 120}},
    )
    assert created.status_code == 201, created.json
    rule = created.json
    assert rule["default"] is False and rule["audience"] == "rep" and rule["params"] == {"min_seconds": 120}
    changed = client.patch(
        f"/api/v1/alert-rules/{rule['id']}",
        headers=admin_headers,
        json={"enabled": False, "window_seconds": 60, "audience": "rep_and_admins"},
    )
    assert changed.status_code == 200
    assert (changed.json["enabled"], changed.json["window_seconds"], changed.json["audience"]) == (
        False,
        60,
        "rep_and_admins",
    )
    assert client.delete(f"/api/v1/alert-rules/{rule['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/api/v1/alert-rules/{rule['id']}", headers=admin_headers).status_code == 404


INVALID_RULES = [
    ({"kind": "nope", "name": "x"}, "kind"),
    ({"kind": "content_read"}, "name"),
    ({"kind": "content_read", "name": "x", "params": {"min_seconds": 0}}, "params"),
    ({"kind": "shared", "name": "x", "params": {"min_seconds": 5}}, "params"),
    ({"kind": "contact_click", "name": "x", "params": {"actions": ["fax"]}}, "params"),
    ({"kind": "contact_click", "name": "x", "params": {"actions": []}}, "params"),
    ({"kind": "card_opened", "name": "x", "window_seconds": -1}, "window_seconds"),
    ({"kind": "card_opened", "name": "x", "audience": "everyone"}, "audience"),
    ({"kind": "card_opened", "name": "   "}, "name"),
]


def test_invalid_rules_are_refused_with_field_errors(client, admin_headers, db):
    """Is each invalid rule a 422 naming the field, with nothing written?"""
    client.get("/api/v1/alert-rules", headers=admin_headers)
    before = db.session.scalar(select(func.count()).select_from(AlertRule))
    for body, field in INVALID_RULES:
        resp = client.post("/api/v1/alert-rules", headers=admin_headers, json=body)
        assert resp.status_code == 422 and field in resp.json["error"]["fields"], body
    assert db.session.scalar(select(func.count()).select_from(AlertRule)) == before


def test_rule_changes_are_validated_for_the_rules_kind(client, admin_headers):
    """Are a default rule's params checked against its kind, its kind fixed, its name unique?"""
    read_id = _rule_id(client, admin_headers, "content_read")
    bad = client.patch(f"/api/v1/alert-rules/{read_id}", headers=admin_headers, json={"params": {"min_seconds": -5}})
    assert bad.status_code == 422 and "params" in bad.json["error"]["fields"]
    kind = client.patch(f"/api/v1/alert-rules/{read_id}", headers=admin_headers, json={"kind": "shared"})
    assert kind.status_code == 422 and "kind" in kind.json["error"]["fields"]
    clash = client.patch(f"/api/v1/alert-rules/{read_id}", headers=admin_headers, json={"name": "Lost customer"})
    assert clash.status_code == 409
    good = client.patch(f"/api/v1/alert-rules/{read_id}", headers=admin_headers, json={"params": {"min_seconds": 45}})
    assert good.json["params"] == {"min_seconds": 45}


def test_defaults_cannot_be_deleted_and_reps_cannot_write(client, admin_headers, api_auth, reps):
    """Is deleting a default a 409, and any rule write by a rep a 403?"""
    lost_id = _rule_id(client, admin_headers, "lost_customer")
    assert client.delete(f"/api/v1/alert-rules/{lost_id}", headers=admin_headers).status_code == 409
    rep = api_auth.headers("rep", staff_id=reps[0].id)
    assert client.patch(f"/api/v1/alert-rules/{lost_id}", headers=rep, json={"enabled": False}).status_code == 403
    assert client.post("/api/v1/alert-rules", headers=rep, json={"kind": "shared", "name": "x"}).status_code == 403


def _raise(corp, rep, customer, action, at_ms):
    items = [[corp.id, customer.id, rep.id, 0, None, action, at_ms]]
    assert rules.evaluate_activities(items) == 1


def test_alerts_filter_and_reps_see_only_their_own(client, admin_headers, api_auth, corp, reps, db):
    """Can admins filter alerts by rep, customer, rule, kind and state, while a rep sees only theirs?"""
    a, b = reps
    wang, li = factories.customer(corp, name="Wang"), factories.customer(corp, name="Li")
    _raise(corp, a, wang, "click_phone", 1_700_000_000_000)
    _raise(corp, a, li, "share", 1_700_000_001_000)
    _raise(corp, b, li, "click_phone", 1_700_000_002_000)
    everything = client.get("/api/v1/alerts", headers=admin_headers).json
    assert everything["total"] == 3 and everything["items"][0]["staff_id"] == b.id  # newest first
    assert client.get("/api/v1/alerts?staff=rep-a", headers=admin_headers).json["total"] == 2
    assert client.get(f"/api/v1/alerts?customer={li.id}", headers=admin_headers).json["total"] == 2
    click_rule = _rule_id(client, admin_headers, "contact_click")
    assert client.get(f"/api/v1/alerts?rule={click_rule}", headers=admin_headers).json["total"] == 2
    assert client.get("/api/v1/alerts?kind=shared", headers=admin_headers).json["total"] == 1
    assert client.get("/api/v1/alerts?state=pending", headers=admin_headers).json["total"] == 3
    assert client.get("/api/v1/alerts?state=sent", headers=admin_headers).json["total"] == 0
    assert client.get("/api/v1/alerts?state=bogus", headers=admin_headers).status_code == 422
    rep_b = api_auth.headers("rep", staff_id=b.id)
    mine = client.get("/api/v1/alerts", headers=rep_b).json
    assert [i["staff_id"] for i in mine["items"]] == [b.id]
    deliveries = mine["items"][0]["deliveries"]
    assert [(d["userid"], d["state"]) for d in deliveries] == [("rep-b", "pending")]
    other = everything["items"][-1]["id"]
    assert client.get(f"/api/v1/alerts/{other}", headers=rep_b).status_code == 404
    assert client.get(f"/api/v1/alerts/{other}", headers=admin_headers).status_code == 200


def test_rep_sets_own_preferences(client, admin_headers, api_auth, reps):
    """Can a rep mute a rule and set overnight quiet hours, and not touch another rep's?"""
    a, b = reps
    rep = api_auth.headers("rep", staff_id=a.id)
    shared = _rule_id(client, admin_headers, "shared")
    resp = client.patch(
        "/api/v1/alert-preferences/me",
        headers=rep,
        json={
            "muted_rule_ids": [shared],
            "quiet_hours": {"start": "22:00", "end": "07:30"},
            "timezone": "Asia/Shanghai",
        },
    )
    assert resp.status_code == 200, resp.json
    assert resp.json == {
        "staff_id": a.id,
        "muted_rule_ids": [shared],
        "quiet_hours": {"start": "22:00", "end": "07:30"},
        "timezone": "Asia/Shanghai",
    }
    assert client.get(f"/api/v1/alert-preferences/{a.id}", headers=admin_headers).json == resp.json
    assert client.patch(f"/api/v1/alert-preferences/{b.id}", headers=rep, json={"quiet_hours": None}).status_code == 404
    cleared = client.patch(f"/api/v1/alert-preferences/{a.id}", headers=admin_headers, json={"quiet_hours": None})
    assert cleared.json["quiet_hours"] is None and cleared.json["muted_rule_ids"] == [shared]
    assert client.get("/api/v1/alert-preferences/me", headers=admin_headers).status_code == 404  # not a rep


INVALID_PREFERENCES = [
    ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "22:00"}}, "quiet_hours"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"muted_rule_ids": [987654]}, "muted_rule_ids"),
    ({"muted_rule_ids": "all"}, "muted_rule_ids"),
]


def test_invalid_preferences_are_refused(client, api_auth, reps):
    """Is each invalid preference a 422 naming the field, with nothing stored?"""
    headers = api_auth.headers("rep", staff_id=reps[0].id)
    for body, field in INVALID_PREFERENCES:
        resp = client.patch("/api/v1/alert-preferences/me", headers=headers, json=body)
        assert resp.status_code == 422 and field in resp.json["error"]["fields"], body
    assert client.get("/api/v1/alert-preferences/me", headers=headers).json == {
        "staff_id": reps[0].id,
        "muted_rule_ids": [],
        "quiet_hours": None,
        "timezone": "Asia/Shanghai",
    }


def test_alert_settings(client, admin_headers, api_auth, reps, corp, db):
    """Can an admin set the alert admins and pacing (validated), keeping the corp's other settings?"""
    corp.settings = {"cards": {"hot": 40}}
    db.session.commit()
    assert client.get("/api/v1/alert-settings", headers=admin_headers).json == {
        "admin_userids": [],
        "link_base_url": "",
        "burst_limit": 3,
        "burst_seconds": 10,
    }
    resp = client.patch(
        "/api/v1/alert-settings",
        headers=admin_headers,
        json={"admin_userids": ["boss", "boss", "ops"], "link_base_url": "https://scrm.example.com"},
    )
    assert resp.json["admin_userids"] == ["boss", "ops"] and resp.json["burst_limit"] == 3
    db.session.refresh(corp)
    assert corp.settings["cards"] == {"hot": 40} and corp.settings["alerts"]["admin_userids"] == ["boss", "ops"]
    for body, field in (
        ({"burst_limit": 0}, "burst_limit"),
        ({"link_base_url": "ftp://x"}, "link_base_url"),
        ({"admin_userids": [""]}, "admin_userids"),
    ):
        bad = client.patch("/api/v1/alert-settings", headers=admin_headers, json=body)
        assert bad.status_code == 422 and field in bad.json["error"]["fields"]
    rep = api_auth.headers("rep", staff_id=reps[0].id)
    assert client.patch("/api/v1/alert-settings", headers=rep, json={"burst_limit": 5}).status_code == 403
