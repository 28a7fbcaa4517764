"""Hand-overs in the console: list, live progress per state, per-customer detail, approve / cancel."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Department, Handover, HandoverItem, HandoverStatus, Staff
from app.services import corps, handover, sync
from app.services.auth import Principal
from tests import factories
from wecom.client import contact_client

DAY = 86400


@pytest.fixture
def team(corp, db):
    """alice (dept 3) has 4 customers; bob and carol are in dept 3, dave in dept 4."""
    db.session.add_all(
        [Department(corp_id=corp.id, wecom_id=w, name=f"d{w}", parent_wecom_id=p) for w, p in [(2, 1), (3, 2), (4, 2)]]
    )
    db.session.commit()
    people = {
        name: factories.staff(corp, userid=name, department_wecom_id=d)
        for name, d in [("alice", 3), ("bob", 3), ("carol", 3), ("dave", 4)]
    }
    for i in range(4):
        c = factories.customer(corp, name=f"c{i}", identities=[("external_userid", f"wm{i}")])
        factories.follow(corp, people["alice"], c)
    return people


def _pending(corp, console_login, db) -> tuple:
    """An admin session and a hand-over of alice's customers waiting for approval."""
    admin = console_login("admin")
    corp.settings = {**(corp.settings or {}), "handover": {"approval_required": True}}
    db.session.commit()
    principal = Principal(user_id=admin.user.id, corp_id=corp.id, role=admin.user.role, staff_id=None)
    created = handover.create(principal, handover.Request(kind="on_the_job", handover_userid="alice"))
    return admin, created.id


def test_list_filters_and_links_to_detail(team, corp, db, console_login):
    """Does the list show the hand-over with its progress, filter by status and kind, and link to its page?"""
    admin, handover_id = _pending(corp, console_login, db)
    html = admin.get("/console/handovers").get_data(as_text=True)
    assert html.count('data-testid="handover-row"') == 1 and f'href="/console/handovers/{handover_id}"' in html
    assert "0 / 4 final" in html
    assert (
        admin.get("/console/handovers?status=running").get_data(as_text=True).count('data-testid="handover-row"') == 0
    )
    assert (
        admin.get("/console/handovers?kind=on_the_job&staff=alice")
        .get_data(as_text=True)
        .count('data-testid="handover-row"')
        == 1
    )
    assert admin.get("/console/handovers?status=nope").status_code == 422


def test_detail_shows_counts_items_and_history(team, corp, db, console_login):
    """Does the detail page show counts per state and every customer with state and history?"""
    admin, handover_id = _pending(corp, console_login, db)
    html = admin.get(f"/console/handovers/{handover_id}").get_data(as_text=True)
    assert 'data-testid="count-planned">4<' in html
    assert html.count('data-testid="item-row"') == 4
    assert 'data-testid="item-history"' in html and "planned" in html
    assert 'data-testid="approve-form"' in html
    fragment = admin.get(f"/console/handovers/{handover_id}/progress").get_data(as_text=True)
    assert 'data-final="false"' in fragment and 'data-testid="progress-total">4<' in fragment
    filtered = admin.get(f"/console/handovers/{handover_id}?state=done").get_data(as_text=True)
    assert filtered.count('data-testid="item-row"') == 0


def test_cancel_needs_csrf_then_cancels(team, corp, db, console_login):
    """Is a cancel without the CSRF token refused and nothing changed, and with it every customer cancelled?"""
    admin, handover_id = _pending(corp, console_login, db)
    assert admin.post(f"/console/handovers/{handover_id}/cancel", {"reason": "x"}, csrf=False).status_code == 400
    db.session.expire_all()
    assert db.session.get(Handover, handover_id).status == HandoverStatus.pending_approval
    too_long = admin.post(f"/console/handovers/{handover_id}/cancel", {"reason": "x" * 200})
    assert too_long.status_code == 422 and 'data-testid="error-reason"' in too_long.get_data(as_text=True)
    resp = admin.post(f"/console/handovers/{handover_id}/cancel", {"reason": "wrong rep"})
    assert resp.status_code == 302
    html = admin.get(f"/console/handovers/{handover_id}").get_data(as_text=True)
    assert 'data-testid="count-cancelled">4<' in html and 'data-testid="cancel-form"' not in html
    again = admin.post(f"/console/handovers/{handover_id}/cancel", {"reason": "again"})
    assert again.status_code == 409 and 'data-testid="error-page"' in again.get_data(as_text=True)


def test_reps_see_their_part_and_cannot_act(team, corp, db, console_login):
    """Does a taker see only their customers and no buttons, an outsider a 404, and approve answer 403?"""
    admin, handover_id = _pending(corp, console_login, db)
    takers = set(db.session.scalars(select(HandoverItem.taker_staff_id).where(HandoverItem.handover_id == handover_id)))
    taker = db.session.get(Staff, sorted(takers)[0])
    mine = db.session.scalar(
        select(HandoverItem).where(HandoverItem.handover_id == handover_id, HandoverItem.taker_staff_id == taker.id)
    )
    rep = console_login("rep", staff=taker)
    html = rep.get(f"/console/handovers/{handover_id}").get_data(as_text=True)
    own = len(list(db.session.scalars(select(HandoverItem.id).where(HandoverItem.taker_staff_id == taker.id))))
    assert html.count('data-testid="item-row"') == own < 4
    assert f'data-customer-id="{mine.customer_id}"' in html
    assert 'data-testid="approve-form"' not in html and 'data-testid="cancel-form"' not in html
    assert rep.post(f"/console/handovers/{handover_id}/approve").status_code == 403
    assert rep.post(f"/console/handovers/{handover_id}/cancel", {"reason": "x"}).status_code == 403
    outsider = console_login("rep", staff=team["dave"])
    assert outsider.get(f"/console/handovers/{handover_id}").status_code == 404
    assert outsider.get(f"/console/handovers/{handover_id}/progress").status_code == 404
    assert outsider.get("/console/handovers").get_data(as_text=True).count('data-testid="handover-row"') == 0
    db.session.expire_all()
    assert db.session.get(Handover, handover_id).status == HandoverStatus.pending_approval


def test_live_progress_from_approval_to_done(sim, db, run_jobs, runner, console_login):
    """After approval, does the progress fragment go planned → waiting → done with WeCom, then stop polling?"""
    sim.control.seed_demo()
    sync.run(corps.env_corp_id())
    way = contact_client().external_contact.add_contact_way(type=1, scene=2, state="w", user=["zhangwei"])
    for _ in range(2):
        sim.control.scan(config_id=way["config_id"])
    sim.control.flush_callbacks()
    run_jobs()
    admin = console_login("admin")
    rep = db.session.scalar(select(Staff).where(Staff.userid == "zhangwei"))
    corp = corps.env_corp()
    corp.settings = {**(corp.settings or {}), "handover": {"approval_required": True}}
    db.session.commit()
    resp = admin.post(
        f"/console/staff/{rep.id}/handover",
        {
            "kind": "on_the_job",
            "strategy": "successor",
            "successor_userid": "lina",
            "include_group_chats": "false",
            "action": "start",
        },
    )
    handover_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    progress = f"/console/handovers/{handover_id}/progress"
    total = int(admin.get(progress).get_data(as_text=True).split('data-testid="progress-total">')[1].split("<")[0])
    assert total >= 2
    assert admin.post(f"/console/handovers/{handover_id}/approve").status_code == 302
    run_jobs()
    fragment = admin.get(progress).get_data(as_text=True)
    assert f'data-testid="count-waiting">{total}<' in fragment and 'data-final="false"' in fragment
    sim.control.advance(DAY + 60, wait=True)
    result = runner.invoke(args=["handover", "run", str(handover_id)])
    assert result.exit_code == 0, result.output
    sim.control.flush_callbacks()
    run_jobs()
    fragment = admin.get(progress).get_data(as_text=True)
    assert f'data-testid="count-done">{total}<' in fragment
    assert 'data-final="true"' in fragment and 'data-status="finished"' in fragment


def test_group_chats_page_on_their_own(team, corp, db, console_login):
    """With more group chats than a page holds, does the detail page show a page of them with
    a pager of its own (chats_page), leaving the customers' list where it is?"""
    from app.console.pages.handovers import CHATS_PER_PAGE
    from app.models import HandoverGroupChat, utcnow

    admin, handover_id = _pending(corp, console_login, db)
    db.session.add_all(
        HandoverGroupChat(
            corp_id=corp.id,
            handover_id=handover_id,
            chat_id=f"wr{n:03d}",
            name=f"chat {n:03d}",
            from_userid="alice",
            not_before=utcnow(),
        )
        for n in range(CHATS_PER_PAGE + 1)
    )
    db.session.commit()
    first = admin.get(f"/console/handovers/{handover_id}").get_data(as_text=True)
    assert first.count('data-testid="handover-chat-row"') == CHATS_PER_PAGE
    assert f"page 1 of 2 · {CHATS_PER_PAGE + 1} in all" in first and 'data-testid="pager-chats_page-next"' in first
    second = admin.get(f"/console/handovers/{handover_id}?chats_page=2").get_data(as_text=True)
    assert second.count('data-testid="handover-chat-row"') == 1 and f"chat {CHATS_PER_PAGE:03d}" in second
    assert second.count('data-testid="item-row"') == first.count('data-testid="item-row"') == 4
