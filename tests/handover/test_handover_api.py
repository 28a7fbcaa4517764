"""The /api/v1/handovers API: planning (policy, successor, explicit), dry runs, validation,
approval, cancellation, the policy itself and who may see what. No WeCom call is needed here."""

import pytest

from app.models import Department, Handover, HandoverItem, StaffStatus
from tests import factories

URL = "/api/v1/handovers"


@pytest.fixture
def team(corp, db):
    """alice leaves dept 3 with 4 customers; bob and carol stay in dept 3, dave is in dept 4."""
    db.session.add_all(
        [Department(corp_id=corp.id, wecom_id=w, name=f"d{w}", parent_wecom_id=p) for w, p in [(2, 1), (3, 2), (4, 2)]]
    )
    db.session.commit()
    alice = factories.staff(corp, userid="alice", department_wecom_id=3)
    bob = factories.staff(corp, userid="bob", department_wecom_id=3)
    carol = factories.staff(corp, userid="carol", department_wecom_id=3)
    dave = factories.staff(corp, userid="dave", department_wecom_id=4)
    customers = []
    for i in range(4):
        c = factories.customer(corp, name=f"c{i}", identities=[("external_userid", f"wm{i}")])
        factories.follow(corp, alice, c)
        customers.append(c)
    return {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "customers": customers}


def _on_the_job(**extra):
    return {"kind": "on_the_job", "handover_userid": "alice", **extra}


def test_dry_run_previews_the_policy_plan_and_stores_nothing(client, admin_headers, team, db):
    """Does a dry run spread the customers over the same department and store nothing?"""
    resp = client.post(f"{URL}/dry_run", json=_on_the_job(), headers=admin_headers)
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert body["total"] == 4 and body["no_taker"] == 0
    assert sorted((t["userid"], t["customers"]) for t in body["takers"]) == [("bob", 2), ("carol", 2)]
    assert db.session.query(Handover).count() == 0 and db.session.query(HandoverItem).count() == 0


def test_department_falls_back_to_the_parent_subtree(client, admin_headers, team, db):
    """With nobody else left in the department, do the customers go to the parent department's reps?"""
    for name in ("bob", "carol"):
        team[name].status = StaffStatus.resigned
    db.session.commit()
    body = client.post(f"{URL}/dry_run", json=_on_the_job(), headers=admin_headers).json
    assert [t["userid"] for t in body["takers"]] == ["dave"]


def test_caps_are_respected_and_overflow_has_no_taker(client, admin_headers, team):
    """When every rep is at their cap, are the extra customers left without a taker?"""
    client.put(f"{URL}/policy", json={"customer_cap": 1, "scope": "corp"}, headers=admin_headers)
    body = client.post(f"{URL}/dry_run", json=_on_the_job(), headers=admin_headers).json
    assert sorted(t["userid"] for t in body["takers"]) == ["bob", "carol", "dave"]
    assert body["no_taker"] == 1


def test_successor_and_explicit_plans(client, admin_headers, team):
    """Do a named successor and an explicit plan decide the takers?"""
    body = client.post(
        f"{URL}/dry_run", json=_on_the_job(strategy="successor", successor_userid="dave"), headers=admin_headers
    ).json
    assert [(t["userid"], t["customers"]) for t in body["takers"]] == [("dave", 4)]
    c0, c1 = (c.id for c in team["customers"][:2])
    plan = [{"customer_id": c0, "takeover_userid": "carol"}, {"customer_id": c1, "takeover_userid": "dave"}]
    body = client.post(f"{URL}/dry_run", json=_on_the_job(strategy="explicit", plan=plan), headers=admin_headers).json
    assert {(c["customer_id"], c["takeover_userid"]) for c in body["customers"]} == {(c0, "carol"), (c1, "dave")}


def test_policy_successor_per_rep(client, admin_headers, team):
    """Does the policy's successor for the departing rep take all their customers?"""
    resp = client.put(f"{URL}/policy", json={"successors": {"alice": "carol"}}, headers=admin_headers)
    assert resp.status_code == 200 and resp.json["successors"] == {"alice": "carol"}
    body = client.post(f"{URL}/dry_run", json=_on_the_job(), headers=admin_headers).json
    assert [(t["userid"], t["customers"]) for t in body["takers"]] == [("carol", 4)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "on_the_job"}, "handover_userid"),
        (_on_the_job(strategy="successor"), "successor_userid"),
        (_on_the_job(strategy="explicit"), "plan"),
        (_on_the_job(transfer_message="x" * 201), "transfer_message"),
        ({"kind": "resigned", "handover_userid": "alice", "transfer_message": "hi"}, "transfer_message"),
        (_on_the_job(customer_ids=["a"]), "customer_ids"),
        (_on_the_job(bogus=1), "bogus"),
    ],
)
def test_invalid_requests_are_422(client, admin_headers, team, db, body, field):
    """Is an invalid hand-over request refused with a 422 naming the field, storing nothing?"""
    resp = client.post(URL, json=body, headers=admin_headers)
    assert resp.status_code == 422 and field in resp.json["error"]["fields"], resp.json
    assert db.session.query(Handover).count() == 0


def test_database_checks_are_422_or_409(client, admin_headers, team, corp):
    """Are unknown reps, foreign customers, wrong kinds and customers in flight refused cleanly?"""
    stranger = factories.customer(corp, name="x", identities=[("external_userid", "wmx")])
    cases = [
        (_on_the_job(handover_userid="nobody"), 422, "handover_userid"),
        ({"kind": "resigned", "handover_userid": "alice"}, 422, "kind"),
        (_on_the_job(strategy="successor", successor_userid="alice"), 422, "successor_userid"),
        (_on_the_job(customer_ids=[stranger.id]), 422, "customer_ids"),
    ]
    for body, status, field in cases:
        resp = client.post(URL, json=body, headers=admin_headers)
        assert resp.status_code == status and field in resp.json["error"]["fields"], (body, resp.json)
    first = team["customers"][0].id
    client.put(f"{URL}/policy", json={"approval_required": True}, headers=admin_headers)
    assert client.post(URL, json=_on_the_job(customer_ids=[first]), headers=admin_headers).status_code == 201
    resp = client.post(URL, json=_on_the_job(customer_ids=[first]), headers=admin_headers)
    assert resp.status_code == 409 and resp.json["error"]["fields"] == {"customer_ids": [str(first)]}


def test_approval_then_cancel(client, admin_headers, team, db):
    """With approval required, does a hand-over wait, start on approval and stop on cancel?"""
    client.put(f"{URL}/policy", json={"approval_required": True}, headers=admin_headers)
    created = client.post(URL, json=_on_the_job(transfer_message="王经理接手"), headers=admin_headers)
    assert created.status_code == 201, created.json
    body = created.json
    assert body["status"] == "pending_approval" and body["counts"] == {"planned": 4}
    assert body["transfer_message"] == "王经理接手"
    handover_id = body["id"]
    approved = client.post(f"{URL}/{handover_id}/approve", headers=admin_headers).json
    assert approved["status"] == "running" and approved["approved_by"].startswith("user:")
    again = client.post(f"{URL}/{handover_id}/approve", headers=admin_headers)
    assert again.status_code == 409
    cancelled = client.post(f"{URL}/{handover_id}/cancel", json={"reason": "wrong rep"}, headers=admin_headers).json
    assert cancelled["status"] == "cancelled" and cancelled["counts"] == {"cancelled": 4}
    items = client.get(f"{URL}/{handover_id}/customers", headers=admin_headers).json["items"]
    assert [h["state"] for h in items[0]["history"]] == ["planned", "cancelled"]
    assert client.post(f"{URL}/{handover_id}/cancel", json={}, headers=admin_headers).status_code == 409
    listed = client.get(f"{URL}?status=cancelled", headers=admin_headers).json
    assert [h["id"] for h in listed["items"]] == [handover_id]


def test_policy_validation(client, admin_headers, team):
    """Are a bad policy field (422) and an unknown or resigned successor (422) refused?"""
    assert client.get(f"{URL}/policy", headers=admin_headers).json["poll_seconds"] == [60, 300, 900, 1800, 3600]
    assert client.put(f"{URL}/policy", json={"poll_seconds": [0]}, headers=admin_headers).status_code == 422
    resp = client.put(
        f"{URL}/policy", json={"strategy": "successor", "successor_userid": "ghost"}, headers=admin_headers
    )
    assert resp.status_code == 422 and "successor_userid" in resp.json["error"]["fields"]
    assert client.get(f"{URL}/policy", headers=admin_headers).json["strategy"] == "spread"


def test_reps_see_only_their_part(client, api_auth, admin_headers, team):
    """Does a taker see the hand-over with only their own customers, and an outsider nothing?"""
    client.put(f"{URL}/policy", json={"approval_required": True}, headers=admin_headers)
    handover_id = client.post(URL, json=_on_the_job(), headers=admin_headers).json["id"]
    bob = api_auth.headers("rep", staff_id=team["bob"].id)
    dave = api_auth.headers("rep", staff_id=team["dave"].id)
    assert client.get(f"{URL}/{handover_id}", headers=bob).json["total"] == 2
    items = client.get(f"{URL}/{handover_id}/customers", headers=bob).json["items"]
    assert {i["takeover_userid"] for i in items} == {"bob"}
    assert client.get(f"{URL}/{handover_id}", headers=dave).status_code == 404
    assert client.get(URL, headers=dave).json["total"] == 0
    assert client.post(f"{URL}/{handover_id}/approve", headers=bob).status_code == 403
    assert client.get(f"{URL}/policy", headers=bob).status_code == 403
