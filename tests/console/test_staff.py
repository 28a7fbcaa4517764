"""Staff in the console: the list, "sync now" with progress, starting a hand-over."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models import Handover, Staff
from app.services import corps, sync
from wecom.client import contact_client


def _staff(db, userid) -> Staff:
    return db.session.scalar(select(Staff).where(Staff.userid == userid))


def _handovers(db) -> int:
    return db.session.scalar(select(func.count()).select_from(Handover))


def _give(sim, run_jobs, userid, n):
    """``n`` new customers of ``userid`` (scans of a contact way), mirrored by the callbacks."""
    way = contact_client().external_contact.add_contact_way(type=1, scene=2, state=f"way-{userid}", user=[userid])
    ids = [sim.control.scan(config_id=way["config_id"])["external_userid"] for _ in range(n)]
    sim.control.flush_callbacks()
    run_jobs()
    return ids


def test_sync_now_runs_on_a_worker_and_reports_progress(app, sim, db, run_jobs, console_login):
    """Does "sync now" queue the sync, show it queued, and once a worker ran it show the figures and the staff?"""
    sim.control.seed_demo()
    session = console_login("admin")
    assert 'data-testid="empty"' in session.get("/console/staff").get_data(as_text=True)
    resp = session.post("/console/staff/sync")
    assert resp.status_code == 302
    fragment = session.get("/console/staff/sync/progress").get_data(as_text=True)
    assert 'data-status="queued"' in fragment and 'data-final="false"' in fragment
    # A second click while it waits does not queue another.
    session.post("/console/staff/sync")
    assert len(app.extensions["queues"]["low"]) == 1
    assert "already under way" in session.get("/console/staff").get_data(as_text=True)
    run_jobs()
    progress = sync.progress_of(corps.env_corp_id())
    assert progress["status"] == "done" and progress["phase"] == "customers"
    assert progress["done"] == progress["total"]
    fragment = session.get("/console/staff/sync/progress").get_data(as_text=True)
    assert 'data-status="done"' in fragment and 'data-final="true"' in fragment
    assert f'data-testid="sync-contacts">{progress["contacts"]}<' in fragment
    html = session.get("/console/staff").get_data(as_text=True)
    assert html.count('data-testid="staff-row"') == 5
    assert "华东销售" in html  # department names come from the sync too
    # The lock is released: the next sync can be queued.
    assert session.post("/console/staff/sync").status_code == 302
    assert len(app.extensions["queues"]["low"]) == 1


def test_failed_sync_is_shown_and_can_be_retried(app, sim, db, run_jobs, console_login):
    """When WeCom fails the sync, does the page say so (no secrets) and let the admin start another?"""
    sim.control.seed_demo()
    sim.control.set_faults(rate=1.0, errors=[60011], paths=["department/list"], times=1)
    session = console_login("admin")
    session.post("/console/staff/sync")
    run_jobs()
    fragment = session.get("/console/staff/sync/progress").get_data(as_text=True)
    assert 'data-status="failed"' in fragment and "60011" in fragment
    assert "access_token" not in fragment
    session.post("/console/staff/sync")
    run_jobs()
    assert sync.progress_of(corps.env_corp_id())["status"] == "done"


def test_list_shows_status_department_and_customer_counts(app, sim, db, run_jobs, console_login):
    """Does the list show each rep's live customer count and filter by status and text?"""
    sim.control.seed_demo()
    sync.run(corps.env_corp_id())
    _give(sim, run_jobs, "wangfang", 2)
    before = sync.run(corps.env_corp_id())
    session = console_login("admin")
    html = session.get("/console/staff?q=wangfang").get_data(as_text=True)
    assert html.count('data-testid="staff-row"') == 1
    count = int(html.split('data-testid="customer-count">')[1].split("<")[0])
    assert count >= 2 and before.staff == 5
    sim.control.resign_user("chenjing")
    sim.control.flush_callbacks()
    run_jobs()
    html = session.get("/console/staff?status=resigned").get_data(as_text=True)
    assert html.count('data-testid="staff-row"') == 1 and 'data-userid="chenjing"' in html
    assert session.get("/console/staff?status=gone").status_code == 422


def test_start_a_hand_over_with_preview(app, sim, db, run_jobs, console_login):
    """Does the hand-over form preview the plan without storing it, then start it and show its page?"""
    sim.control.seed_demo()
    sync.run(corps.env_corp_id())
    _give(sim, run_jobs, "zhangwei", 3)
    rep = _staff(db, "zhangwei")
    session = console_login("admin")
    assert session.get(f"/console/staff/{rep.id}/handover").status_code == 200
    form = {
        "kind": "on_the_job",
        "strategy": "successor",
        "successor_userid": "lina",
        "transfer_message": "您好，李娜将继续为您服务",
        "include_group_chats": "false",
    }
    preview = session.post(f"/console/staff/{rep.id}/handover", {**form, "action": "preview"})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    total = int(html.split('data-testid="preview-total">')[1].split("<")[0])
    assert total >= 3 and 'data-userid="lina"' in html
    assert _handovers(db) == 0
    started = session.post(f"/console/staff/{rep.id}/handover", {**form, "action": "start"})
    assert started.status_code == 302
    handover = db.session.scalar(select(Handover))
    assert started.headers["Location"].endswith(f"/console/handovers/{handover.id}")
    assert handover.kind.value == "on_the_job" and handover.transfer_message == "您好，李娜将继续为您服务"
    run_jobs()
    page = session.get(f"/console/handovers/{handover.id}").get_data(as_text=True)
    assert f'data-testid="count-waiting">{total}<' in page


def test_hand_over_form_errors_in_place_and_nothing_stored(app, sim, db, run_jobs, console_login):
    """Are a missing successor, an unknown successor and a resigned kind for an active rep shown beside their fields?"""
    sim.control.seed_demo()
    sync.run(corps.env_corp_id())
    rep = _staff(db, "zhangwei")
    session = console_login("admin")
    url = f"/console/staff/{rep.id}/handover"
    cases = [
        ({"kind": "on_the_job", "strategy": "successor"}, "successor_userid"),
        ({"kind": "on_the_job", "strategy": "successor", "successor_userid": "ghost"}, "successor_userid"),
        ({"kind": "resigned", "strategy": "policy"}, "kind"),
        ({"kind": "on_the_job", "strategy": "policy", "customer_ids": "12 abc"}, "customer_ids"),
        ({"kind": "on_the_job", "strategy": "explicit", "plan": "1"}, "plan"),
    ]
    for form, field in cases:
        resp = session.post(url, {**form, "action": "start"})
        assert resp.status_code == 422, (form, resp.status_code)
        assert f'data-testid="error-{field}"' in resp.get_data(as_text=True), form
    assert _handovers(db) == 0


def test_reps_may_not_use_the_staff_pages(app, corp, db, console_login):
    """Is a rep refused (403) the staff list, sync now and the hand-over form?"""
    from tests import factories

    me = factories.staff(corp, userid="me")
    session = console_login("rep", staff=me)
    assert session.get("/console/staff").status_code == 403
    assert session.post("/console/staff/sync").status_code == 403
    assert session.get(f"/console/staff/{me.id}/handover").status_code == 403
    assert sync.progress_of(corp.id) == {}
    assert 'data-testid="nav-staff"' not in session.get("/console/").get_data(as_text=True)
