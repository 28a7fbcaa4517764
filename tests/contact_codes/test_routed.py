"""routed mode: the landing link's atomic pick, over real HTTP, against the simulator."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.extensions import get_redis
from app.models import ContactCode, ContactCodeAssignment
from app.services import corps
from app.services.contact_codes import assignment

from .conftest import way


def _land(base: str, state: str, **params) -> requests.Response:
    return requests.get(f"{base}/c/{state}", params={"format": "json", **params}, timeout=30)


def _scan_all(base: str, state: str, n: int, workers: int = 50) -> list[requests.Response]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: _land(base, state), range(n)))


def test_200_concurrent_scans_never_exceed_a_cap(world, create_code, live_server, db):
    """Under 200 concurrent scans of a capped code, is every cap held exactly and every count exact?"""
    body = create_code(
        mode="routed",
        members=[
            {"userid": "zhangwei", "daily_cap": 30},
            {"userid": "lina", "daily_cap": 40, "weight": 3},
            {"userid": "wangfang", "total_cap": 50},
        ],
    )
    responses = _scan_all(live_server, body["state"], 200)
    assignment.flush_decisions()
    served = Counter(r.json()["rep"]["userid"] for r in responses if r.status_code == 200)
    assert served == {"zhangwei": 30, "lina": 40, "wangfang": 50}
    assert Counter(r.status_code for r in responses) == {200: 120, 503: 80}
    recorded = dict(
        db.session.execute(
            select(ContactCodeAssignment.staff_id, func.count())
            .where(ContactCodeAssignment.staff_id.is_not(None))
            .group_by(ContactCodeAssignment.staff_id)
        ).all()
    )
    by_userid = {m["userid"]: m["staff_id"] for m in body["members"]}
    assert {u: recorded[sid] for u, sid in by_userid.items()} == served
    assert db.session.query(ContactCodeAssignment).filter_by(staff_id=None).count() == 80
    # Each rep's answer is their own single-person way, the same every time.
    ways = {r.json()["rep"]["userid"]: r.json()["config_id"] for r in responses if r.status_code == 200}
    assert ways == {m["userid"]: m["config_id"] for m in body["members"]}


def test_weighted_round_robin_is_exact_over_400_scans(world, create_code, live_server):
    """Do weights 2:1:1 give exactly 200/100/100 over 400 concurrent scans?"""
    body = create_code(
        mode="routed", members=[{"userid": "zhangwei", "weight": 2}, {"userid": "lina"}, {"userid": "wangfang"}]
    )
    responses = _scan_all(live_server, body["state"], 400, workers=32)
    assert all(r.status_code == 200 for r in responses)
    assert Counter(r.json()["rep"]["userid"] for r in responses) == {"zhangwei": 200, "lina": 100, "wangfang": 100}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(weights=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=4), rounds=st.integers(1, 3))
def test_round_robin_split_equals_the_weights(world, create_code, db, weights, rounds):
    """For any weights, does every full round give each rep exactly their weight?"""
    reps = ["zhangwei", "lina", "wangfang", "liuyang"][: len(weights)]
    body = create_code(mode="routed", members=[{"userid": u, "weight": w} for u, w in zip(reps, weights, strict=True)])
    code = db.session.get(ContactCode, body["id"])
    picks = Counter(assignment.pick(code, datetime.now(UTC)).staff_id for _ in range(sum(weights) * rounds))
    assert [picks[m["staff_id"]] for m in body["members"]] == [w * rounds for w in weights]


def test_returning_visitor_keeps_their_rep(world, create_code, live_server, db):
    """Does a visitor coming back (cookie or token) get the same rep without using another slot?"""
    body = create_code(mode="routed", members=[{"userid": "zhangwei", "daily_cap": 1}, {"userid": "lina"}])
    first = _land(live_server, body["state"]).json()
    again = _land(live_server, body["state"], visitor=first["visitor_token"]).json()
    assert again["rep"] == first["rep"] and again["reused"] is True
    session = requests.Session()
    page = session.get(f"{live_server}/c/{body['state']}", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert session.get(f"{live_server}/c/{body['state']}", params={"format": "json"}, timeout=10).json()["reused"]
    assignment.flush_decisions()
    assert db.session.query(ContactCodeAssignment).count() == 2
    forged = _land(live_server, body["state"], visitor=first["visitor_token"][:-2] + "xx").json()
    assert forged["reused"] is False


def test_backup_takes_over_outside_the_schedule(world, create_code, db):
    """When the pool is off schedule, does the backup get the scan, recorded with why?"""
    closed = {"slots": [], "exceptions": []}  # never open: only backups work
    body = create_code(
        mode="routed", schedule=closed, members=[{"userid": "zhangwei"}, {"userid": "chenjing", "backup": True}]
    )
    landing = assignment.land(corps.env_corp_id(), body["state"])
    assert landing.rep_userid == "chenjing"
    assignment.flush_decisions()
    row = db.session.query(ContactCodeAssignment).filter_by(decision_id=landing.assignment_id).one()
    assert row.backup is True and row.reason["schedule_open"] is False
    assert row.reason["excluded"] == {"zhangwei": "outside schedule"}


def test_least_loaded_prefers_the_rep_with_fewer_customers(world, create_code, db):
    """Does least-loaded send scans to the rep with fewer live customers, counting today's picks?"""
    # In the demo world zhangwei and lina each follow one customer; liuyang follows none.
    from app.services import sync

    sync.run(corps.env_corp_id())
    body = create_code(mode="routed", strategy="least_loaded", members=[{"userid": "zhangwei"}, {"userid": "liuyang"}])
    code = db.session.get(ContactCode, body["id"])
    rows = [assignment.pick(code, datetime.now(UTC)) for _ in range(3)]
    staff = {m["staff_id"]: m["userid"] for m in body["members"]}
    assert [staff[r.staff_id] for r in rows] == ["liuyang", "zhangwei", "liuyang"]
    assert [r.reason["load"] for r in rows] == [0, 1, 0]


def test_random_strategy_respects_caps(world, create_code, db):
    """Does the random strategy only pick reps under their caps?"""
    body = create_code(
        mode="routed",
        strategy="random",
        members=[{"userid": "zhangwei", "daily_cap": 3}, {"userid": "lina", "daily_cap": 2}],
    )
    code = db.session.get(ContactCode, body["id"])
    picks = Counter(assignment.pick(code, datetime.now(UTC)).staff_id for _ in range(8))
    by_userid = {m["userid"]: m["staff_id"] for m in body["members"]}
    assert picks == {by_userid["zhangwei"]: 3, by_userid["lina"]: 2, None: 3}


def test_counters_are_rebuilt_after_redis_loses_them(world, create_code, db):
    """If Redis loses the counters, are caps still held from the recorded assignments?"""
    body = create_code(mode="routed", members=[{"userid": "zhangwei", "daily_cap": 6}])
    code = db.session.get(ContactCode, body["id"])
    for _ in range(5):
        assignment.pick(code, datetime.now(UTC))
    assignment.flush_decisions()
    redis = get_redis()
    redis.delete(*redis.keys(f"contact_code:{code.id}:*"))
    results = [assignment.pick(code, datetime.now(UTC)).staff_id for _ in range(3)]
    assert results == [body["members"][0]["staff_id"], None, None]


def test_landing_answers(world, create_code, live_server, client, admin_headers):
    """Does the landing redirect to the QR, answer 404 for an unknown code and 503 when nobody is free?"""
    body = create_code(mode="routed", members=[{"userid": "zhangwei", "daily_cap": 1}])
    redirect = requests.get(
        f"{live_server}/c/{body['state']}", params={"redirect": 1}, allow_redirects=False, timeout=10
    )
    assert redirect.status_code == 302 and redirect.headers["Location"] == body["members"][0]["qr_code"]
    assert _land(live_server, body["state"]).status_code == 503
    assert requests.get(f"{live_server}/c/{body['state']}", timeout=10).status_code == 503  # an HTML page
    missing = _land(live_server, "no-such-code")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wecom = create_code(members=[{"userid": "lina"}])
    answer = _land(live_server, wecom["state"]).json()
    assert answer["config_id"] == wecom["config_id"] and answer["rep"] is None


def test_archived_code_stops_working(world, create_code, client, admin_headers, live_server, sim):
    """After archiving, do the landing answer 410 and WeCom's ways stop existing (no scan gets through)?"""
    import pytest

    from wecom.simulator import SimulatorError

    body = create_code(mode="routed", members=[{"userid": "zhangwei"}, {"userid": "lina"}])
    assert _land(live_server, body["state"]).status_code == 200
    client.post(f"/api/v1/contact-codes/{body['id']}/archive", headers=admin_headers)
    assert _land(live_server, body["state"]).status_code == 410
    assert requests.get(f"{live_server}/c/{body['state']}", timeout=10).status_code == 410
    for member in body["members"]:
        with pytest.raises(SimulatorError) as exc:
            sim.control.scan(config_id=member["config_id"])
        assert exc.value.status == 404


def test_assignments_are_listed_with_why(world, create_code, live_server, client, admin_headers):
    """Does GET /assignments show each decision with strategy, weight, counts and caps?"""
    body = create_code(mode="routed", members=[{"userid": "zhangwei", "weight": 2, "daily_cap": 5}])
    _land(live_server, body["state"])
    items = client.get(f"/api/v1/contact-codes/{body['id']}/assignments", headers=admin_headers).json["items"]
    assert items[0]["kind"] == "routed" and items[0]["backup"] is False
    expected = {"strategy": "weighted_round_robin", "weight": 2, "picks_today": 1, "daily_cap": 5}
    assert items[0]["reason"].items() >= expected.items()


def test_rep_way_is_reused_not_recreated(world, create_code, live_server, sim):
    """Is each rep's way made once at creation and reused by every scan?"""
    body = create_code(mode="routed")
    _scan_all(live_server, body["state"], 10, workers=5)
    assert sim.control.state("counts")["counts"]["contact_ways"] == 2
    assert way(sim, body["members"][0]["config_id"])["updates"] == 0


def test_landing_drops_a_resigned_rep_at_once(world, create_code, live_server, sim, run_jobs):
    """When a rep leaves (delete_user), does the very next scan skip them, however warm the landing's cache?"""
    from .conftest import settle

    body = create_code(mode="routed", members=[{"userid": "zhangwei"}, {"userid": "lina"}])
    assert _land(live_server, body["state"]).json()["rep"]["userid"] == "zhangwei"
    sim.control.resign_user("zhangwei")
    settle(sim, run_jobs)
    assert {_land(live_server, body["state"]).json()["rep"]["userid"] for _ in range(4)} == {"lina"}


def test_paused_code_switches_the_landing_at_once(world, create_code, live_server, client, admin_headers):
    """Does pausing a routed code send the next scan to the backup, and resuming bring the pool back?"""
    body = create_code(mode="routed", members=[{"userid": "zhangwei"}, {"userid": "chenjing", "backup": True}])
    assert _land(live_server, body["state"]).json()["rep"]["userid"] == "zhangwei"
    client.post(f"/api/v1/contact-codes/{body['id']}/pause", headers=admin_headers)
    assert _land(live_server, body["state"]).json()["rep"]["userid"] == "chenjing"
    client.post(f"/api/v1/contact-codes/{body['id']}/resume", headers=admin_headers)
    assert _land(live_server, body["state"]).json()["rep"]["userid"] == "zhangwei"


def test_decision_log_is_written_out_once(world, create_code, db, app):
    """Is the decision log written to the database in bulk, scheduled by the first decision, and never twice?"""
    from rq.registry import ScheduledJobRegistry

    body = create_code(mode="routed")
    code = db.session.get(ContactCode, body["id"])
    for _ in range(3):
        assignment.pick(code, datetime.now(UTC))
    scheduled = ScheduledJobRegistry(queue=app.extensions["queues"]["default"]).get_job_ids()
    assert len(scheduled) == 1  # one flush for the burst, not one per decision
    entries = get_redis().lrange(assignment.LOG_KEY, 0, -1)
    assert assignment.flush_decisions() == 3
    get_redis().rpush(assignment.LOG_KEY, *entries)  # as if a flusher died after its commit
    assert assignment.flush_decisions() == 3
    assert db.session.query(ContactCodeAssignment).count() == 3
    assert get_redis().llen(assignment.LOG_KEY) == 0
