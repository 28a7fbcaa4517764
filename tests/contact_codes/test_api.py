"""The contact-code admin API: create, validate, change, pause/resume/archive, visibility."""

import pytest

from app.models import AuditLog, ContactCode, ContactCodeMember

from .conftest import code_body, way


def test_create_wecom_code_returns_state_config_and_qr(world, create_code, sim):
    """Does creating a code make one multi-person WeCom way and answer its state, config_id and qr_code?"""
    body = create_code(tags=[])
    assert body["mode"] == "wecom" and body["status"] == "active"
    assert 1 <= len(body["state"]) <= 30 and body["config_id"] and body["qr_code"]
    assert body["landing_url"].endswith(f"/c/{body['state']}")
    wecom_way = way(sim, body["config_id"])
    assert wecom_way["state"] == body["state"] and wecom_way["type"] == 2
    assert wecom_way["user"] == body["wecom_users"] == ["zhangwei", "lina"]
    assert [m["userid"] for m in body["members"]] == ["zhangwei", "lina"]


def test_create_routed_code_makes_one_way_per_rep(world, create_code, sim):
    """Does a routed code get each rep's own single-person way carrying the code's state?"""
    body = create_code(mode="routed", members=[{"userid": "zhangwei"}, {"userid": "lina", "backup": True}])
    assert body["config_id"] is None
    for member in body["members"]:
        rep_way = way(sim, member["config_id"])
        assert rep_way["type"] == 1 and rep_way["user"] == [member["userid"]] and rep_way["state"] == body["state"]
        assert member["qr_code"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"members": [{"userid": "zhangwei", "weight": 0}]}, "members"),
        ({"members": [{"userid": f"r{i}"} for i in range(101)]}, "members"),
        ({"members": [{"userid": "zhangwei"}, {"userid": "zhangwei"}]}, "members"),
        ({"members": [{"userid": "nobody"}]}, "members"),
        ({"members": [{"userid": "zhangwei", "backup": True}]}, "members"),
        ({"members": [{"userid": "zhangwei", "daily_cap": 0}]}, "members"),
        ({"welcome": {"text": "欢" * 1334}}, "welcome"),
        ({"welcome": {"text": "Hi {customer_name.__class__}"}}, "welcome"),
        ({"welcome": {"text": "", "attachments": []}}, "welcome"),
        ({"welcome": {"attachments": [{"type": "link", "title": "x"}]}}, "welcome"),
        ({"welcome": {"attachments": [{"type": "image"}] * 10}}, "welcome"),
        ({"schedule": {"slots": [{"weekdays": [1], "start": "18:00", "end": "09:00"}]}}, "schedule"),
        ({"schedule": {"slots": [{"weekdays": [8], "start": "09:00", "end": "18:00"}]}}, "schedule"),
        ({"schedule": {"slots": [{"weekdays": [1], "start": "9am", "end": "18:00"}]}}, "schedule"),
        ({"schedule": {"timezone": "Mars/Olympus"}}, "schedule"),
        ({"schedule": {"exceptions": [{"date": "2026-10-01"}, {"date": "2026-10-01"}]}}, "schedule"),
        ({"state": "has space"}, "state"),
        ({"state": "x" * 31}, "state"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"expires_at": "2020-01-01T00:00:00+08:00"}, "expires_at"),
        ({"mode": "psychic"}, "mode"),
        ({"tags": [{"name": "t" * 31}]}, "tags"),
    ],
)
def test_invalid_codes_are_422_with_field_errors(client, admin_headers, reps, db, overrides, field):
    """Is every invalid code refused with 422 and a field error, and nothing written?"""
    resp = client.post("/api/v1/contact-codes", json=code_body(**overrides), headers=admin_headers)
    assert resp.status_code == 422, resp.json
    assert resp.json["error"]["code"] == "validation_error" and field in resp.json["error"]["fields"]
    assert db.session.query(ContactCode).count() == 0


def test_resigned_rep_cannot_join_a_code(client, admin_headers, reps, db):
    """Can a resigned rep be put in a code's pool?"""
    reps["lina"].status = "resigned"
    db.session.commit()
    resp = client.post("/api/v1/contact-codes", json=code_body(), headers=admin_headers)
    assert resp.status_code == 422 and "1" in resp.json["error"]["fields"]["members"]


def test_state_is_unique(world, create_code, client, admin_headers, sim):
    """Is a state already used by another code refused, without leaving a WeCom way behind?"""
    create_code(state="expo2026")
    resp = client.post("/api/v1/contact-codes", json=code_body(state="expo2026"), headers=admin_headers)
    assert resp.status_code == 422 and "state" in resp.json["error"]["fields"]
    assert sim.control.state("counts")["counts"]["contact_ways"] == 1


def test_wecom_failure_leaves_nothing_half_written(world, client, admin_headers, db, sim, corp):
    """When WeCom refuses one rep's way midway, are the ways already made deleted and no code stored?"""
    from tests import factories

    factories.staff(corp, userid="ghost")  # we know them; WeCom does not (60111)
    body = code_body(mode="routed", members=[{"userid": "zhangwei"}, {"userid": "lina"}, {"userid": "ghost"}])
    resp = client.post("/api/v1/contact-codes", json=body, headers=admin_headers)
    assert resp.status_code == 502 and "60111" in resp.json["error"]["message"]
    assert db.session.query(ContactCode).count() == 0 and db.session.query(ContactCodeMember).count() == 0
    assert sim.control.state("counts")["counts"]["contact_ways"] == 0


def test_update_members_follows_in_wecom(world, create_code, client, admin_headers, sim):
    """Does changing a wecom code's members update WeCom's list, and a routed code's ways?"""
    wecom_code = create_code()
    resp = client.patch(
        f"/api/v1/contact-codes/{wecom_code['id']}",
        headers=admin_headers,
        json={"members": [{"userid": "wangfang"}, {"userid": "lina", "weight": 3}]},
    )
    assert resp.status_code == 200, resp.json
    assert way(sim, wecom_code["config_id"])["user"] == ["wangfang", "lina"] == resp.json["wecom_users"]

    routed = create_code(mode="routed")
    old_ways = {m["userid"]: m["config_id"] for m in routed["members"]}
    resp = client.patch(
        f"/api/v1/contact-codes/{routed['id']}",
        headers=admin_headers,
        json={"members": [{"userid": "lina"}, {"userid": "liuyang"}]},
    )
    members = {m["userid"]: m["config_id"] for m in resp.json["members"]}
    assert members["lina"] == old_ways["lina"]  # reused, not made again
    assert way(sim, members["liuyang"])["user"] == ["liuyang"]
    ways = {w["config_id"] for w in sim.control.state("contact_ways")["contact_ways"]}
    assert old_ways["zhangwei"] not in ways


def test_pause_resume_archive(world, create_code, client, admin_headers, sim, db):
    """Do pause and resume switch the pool, and does archive delete the way for good and get audited?"""
    body = create_code(members=[{"userid": "zhangwei"}, {"userid": "chenjing", "backup": True}])
    url = f"/api/v1/contact-codes/{body['id']}"
    paused = client.post(url + "/pause", headers=admin_headers).json
    assert paused["status"] == "paused" and way(sim, body["config_id"])["user"] == ["chenjing"]
    resumed = client.post(url + "/resume", headers=admin_headers).json
    assert resumed["status"] == "active" and way(sim, body["config_id"])["user"] == ["zhangwei"]
    archived = client.post(url + "/archive", headers=admin_headers).json
    assert archived["status"] == "archived" and archived["archived_at"]
    assert sim.control.state("counts")["counts"]["contact_ways"] == 0
    assert client.post(url + "/resume", headers=admin_headers).status_code == 409
    assert client.patch(url, json={"name": "again"}, headers=admin_headers).status_code == 409
    actions = [a.action for a in db.session.query(AuditLog).order_by(AuditLog.id) if a.target_type == "contact_code"]
    assert (
        actions[0] == "contact_code.create"
        and "contact_code.pause" in actions
        and actions[-1] == "contact_code.archive"
    )


def test_rep_reads_only_codes_they_are_in(world, create_code, client, api_auth, reps):
    """Can a rep list or open a code they are not in, or change one they are in?"""
    mine = create_code(members=[{"userid": "lina"}])
    theirs = create_code(members=[{"userid": "zhangwei"}])
    headers = api_auth.headers("rep", staff_id=reps["lina"].id)
    listed = client.get("/api/v1/contact-codes", headers=headers).json
    assert [c["id"] for c in listed["items"]] == [mine["id"]]
    assert client.get(f"/api/v1/contact-codes/{theirs['id']}", headers=headers).status_code == 404
    assert client.patch(f"/api/v1/contact-codes/{mine['id']}", json={"name": "x"}, headers=headers).status_code == 403


def test_list_filters(world, create_code, client, admin_headers):
    """Do the status, mode and text filters narrow the list?"""
    create_code(name="Expo", channel="expo")
    routed = create_code(name="Website", channel="web", mode="routed")
    get = lambda qs: [c["id"] for c in client.get(f"/api/v1/contact-codes?{qs}", headers=admin_headers).json["items"]]  # noqa: E731
    assert get("mode=routed") == [routed["id"]]
    assert get("q=web") == [routed["id"]]
    assert get(f"q={routed['state']}") == [routed["id"]]
    assert get("status=archived") == []
