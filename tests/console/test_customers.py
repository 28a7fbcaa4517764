"""Console customers: the list (search, filters, pages), the 360 page with notes and tags, merge
and unmerge, merge suggestions; rep scoping and CSRF."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.models import (
    CustomerNote,
    Identity,
    IdentityType,
    IntentLevel,
    IntentScore,
    MergeRecord,
    MergeStatus,
    MergeSuggestion,
    Staff,
    SuggestionStatus,
    Tag,
    utcnow,
)
from app.services import corps, customers, oneid, sync
from tests import factories


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="customer-row" data-customer-id="(\d+)"', html)]


@pytest.fixture
def book(db, corp):
    """Two reps; zhangwei follows 25 customers (one tagged VIP, one hot, one from expo), lina one."""
    zhang, li = factories.staff(corp, userid="zhangwei", name="张伟"), factories.staff(corp, userid="lina", name="李娜")
    vip = factories.tag(corp, "VIP", group="等级")
    mine = []
    for n in range(25):
        c = factories.customer(corp, name=f"客户{n:02d}", first_channel="expo-2026" if n == 3 else None)
        factories.follow(corp, zhang, c, tags=[vip] if n == 7 else [])
        mine.append(c)
    theirs = factories.customer(corp, name="李娜的客户", corp_name="ACME")
    factories.follow(corp, li, theirs)
    now = utcnow()
    db.session.add(
        IntentScore(
            corp_id=corp.id,
            customer_id=mine[11].id,
            staff_id=zhang.id,
            score=80.0,
            as_of=now,
            level=IntentLevel.hot,
            level_since=now,
            last_event_at=now,
            events=9,
        )
    )
    db.session.commit()
    return {"zhang": zhang, "li": li, "vip": vip, "mine": mine, "theirs": theirs}


def test_list_paginates_and_filters(console_login, book):
    """Does the list page through 26 customers and filter by text, tag, rep, channel and intent level?"""
    admin = console_login("admin")
    first = admin.get("/console/customers?per_page=10")
    assert first.status_code == 200
    html = _html(first)
    assert 'data-testid="customer-search"' in html and len(_row_ids(html)) == 10
    assert "page 1 of 3 · 26 in all" in html and 'data-testid="pager-next"' in html
    assert len(_row_ids(_html(admin.get("/console/customers?per_page=10&page=3")))) == 6
    mine = book["mine"]
    assert _row_ids(_html(admin.get("/console/customers?q=ACME"))) == [book["theirs"].id]
    assert _row_ids(_html(admin.get(f"/console/customers?tag={book['vip'].id}"))) == [mine[7].id]
    assert _row_ids(_html(admin.get("/console/customers?staff=lina"))) == [book["theirs"].id]
    assert _row_ids(_html(admin.get("/console/customers?channel=expo-2026"))) == [mine[3].id]
    assert _row_ids(_html(admin.get("/console/customers?level=hot"))) == [mine[11].id]
    # The filters stay in the pager's links.
    paged = _html(admin.get("/console/customers?staff=zhangwei&per_page=5"))
    assert "page 1 of 5 · 25 in all" in paged and re.search(r'href="[^"]*staff=zhangwei[^"]*" rel="next"', paged)


@pytest.mark.parametrize(("query", "field"), [("tag=abc", "tag"), ("level=boiling", "level"), ("page=0", "page")])
def test_bad_filters_are_errors_in_place(console_login, book, query, field):
    """Is a bad filter value answered 422 with the error beside its field?"""
    resp = console_login("admin").get(f"/console/customers?{query}")
    assert resp.status_code == 422
    assert f'data-testid="error-{field}"' in _html(resp)


def test_a_rep_sees_only_their_customers(console_login, book):
    """Does a rep's list hold only their customers, and is another rep's customer a 404 page?"""
    rep = console_login("rep", staff=book["li"])
    assert _row_ids(_html(rep.get("/console/customers"))) == [book["theirs"].id]
    assert _row_ids(_html(rep.get(f"/console/customers?tag={book['vip'].id}"))) == []
    resp = rep.get(f"/console/customers/{book['mine'][0].id}")
    assert resp.status_code == 404 and 'data-testid="error-page"' in _html(resp)
    assert rep.get(f"/console/customers/{book['theirs'].id}").status_code == 200
    assert rep.get(f"/console/customers/{book['theirs'].id}/merge").status_code == 403
    assert rep.get("/console/customers/suggestions").status_code == 403


def test_360_page_shows_every_section(console_login, book):
    """Does the 360 page render each section with its test id, and the timeline paginated?"""
    admin = console_login("admin")
    customer = book["mine"][7]
    resp = admin.get(f"/console/customers/{customer.id}")
    html = _html(resp)
    assert resp.status_code == 200
    for section in (
        "profile",
        "presence",
        "identities",
        "source",
        "follows",
        "notes",
        "intent",
        "visits",
        "alerts",
        "handovers",
        "merges",
        "timeline",
    ):
        assert f'data-testid="section-{section}"' in html, section
    assert 'data-testid="tag">等级 / VIP<' in html and 'data-testid="tags-form"' in html
    assert 'data-testid="timeline-row"' in html and 'data-testid="merge-start"' in html


def test_notes_add_and_edit_with_errors_in_place(console_login, book, db):
    """Does a blank note re-render with the error beside the field and store nothing, a good one
    show on the page, and may only its author (or an admin) edit it?"""
    rep = console_login("rep", staff=book["zhang"])
    customer = book["mine"][0]
    bad = rep.post(f"/console/customers/{customer.id}/notes", {"body": "   "})
    assert bad.status_code == 422 and 'data-testid="error-body"' in _html(bad)
    assert db.session.scalar(select(func.count()).select_from(CustomerNote)) == 0
    long = rep.post(f"/console/customers/{customer.id}/notes", {"body": "x" * 2001})
    assert long.status_code == 422 and "x" * 2001 in _html(long)  # what was typed is kept
    ok = rep.post(f"/console/customers/{customer.id}/notes", {"body": "Send the brochure"})
    assert ok.status_code == 302
    page = _html(rep.get(f"/console/customers/{customer.id}"))
    assert 'data-testid="note-body">Send the brochure<' in page and 'data-testid="note-edit-form"' in page
    note = db.session.scalar(select(CustomerNote))
    edited = rep.post(f"/console/customers/{customer.id}/notes/{note.id}", {"body": "Sent the brochure"})
    assert edited.status_code == 302
    blank = rep.post(f"/console/customers/{customer.id}/notes/{note.id}", {"body": ""})
    assert blank.status_code == 422 and 'data-testid="error-body"' in _html(blank)
    other = console_login("rep", staff=book["li"])
    assert other.post(f"/console/customers/{customer.id}/notes/{note.id}", {"body": "hijack"}).status_code == 404
    db.session.expire_all()
    assert db.session.get(CustomerNote, note.id).body == "Sent the brochure"


def test_posts_without_csrf_are_refused(console_login, book, db):
    """Is a note, tag or merge post without the CSRF token refused with 400, storing nothing?"""
    admin = console_login("admin")
    customer = book["mine"][0]
    resp = admin.post(f"/console/customers/{customer.id}/notes", {"body": "hello"}, csrf=False)
    assert resp.status_code == 400
    resp = admin.post(
        f"/console/customers/{customer.id}/merge",
        {"other_id": str(book["mine"][1].id), "reason": "same", "csrf_token": "forged"},
    )
    assert resp.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(CustomerNote)) == 0
    assert db.session.scalar(select(func.count()).select_from(MergeRecord)) == 0


def test_merge_pick_confirm_then_unmerge(console_login, book, db):
    """Can an admin find the other customer, see a confirm step, merge (a reason required), and
    unmerge from the merge list?"""
    admin = console_login("admin")
    a, b = book["mine"][0], book["mine"][1]
    pick = _html(admin.get(f"/console/customers/{a.id}/merge?q=客户01"))
    assert f'data-testid="merge-pick-{b.id}"' in pick
    confirm = _html(admin.get(f"/console/customers/{a.id}/merge?q=客户01&other={b.id}"))
    assert 'data-testid="merge-other-name">客户01<' in confirm and 'data-testid="merge-confirm"' in confirm
    missing = admin.post(f"/console/customers/{a.id}/merge", {"other_id": str(b.id), "reason": ""})
    assert missing.status_code == 422 and 'data-testid="error-reason"' in _html(missing)
    assert db.session.scalar(select(func.count()).select_from(MergeRecord)) == 0
    done = admin.post(f"/console/customers/{a.id}/merge", {"other_id": str(b.id), "reason": "same phone"})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/console/customers/{a.id}")
    # The absorbed id now answers with the survivor's page.
    assert admin.get(f"/console/customers/{b.id}").headers["Location"].endswith(f"/console/customers/{a.id}")
    record = db.session.scalar(select(MergeRecord))
    page = _html(admin.get(f"/console/customers/{a.id}"))
    assert f'data-testid="merge-row" data-merge-id="{record.id}"' in page
    no_reason = admin.post(f"/console/customers/{a.id}/unmerge", {"merge_id": str(record.id), "reason": ""})
    assert no_reason.status_code == 422 and 'data-testid="error-reason"' in _html(no_reason)
    undone = admin.post(f"/console/customers/{a.id}/unmerge", {"merge_id": str(record.id), "reason": "two people"})
    assert undone.status_code == 302
    db.session.expire_all()
    assert db.session.get(MergeRecord, record.id).status == MergeStatus.undone
    assert customers.resolve_id(a.corp_id, b.id) == b.id


def test_merging_a_customer_with_itself_is_an_error_in_place(console_login, book):
    """Is merging a customer into itself refused in the form rather than a crash?"""
    admin = console_login("admin")
    a = book["mine"][0]
    resp = admin.post(f"/console/customers/{a.id}/merge", {"other_id": str(a.id), "reason": "oops"})
    assert resp.status_code == 409 and 'data-testid="error-ids"' in _html(resp)


def test_suggestions_accept_and_dismiss(console_login, corp, db):
    """Are same-name-and-company suggestions listed, accepted into a merge and dismissed, a reason required?"""
    ids = [
        oneid.link(corp.id, [(IdentityType.external_userid, f"wm-sugg-{n}")], "test", name=name, corp_name="ACME")
        for n, name in enumerate(["王五", "王五", "赵六", "赵六"])
    ]
    admin = console_login("admin")
    page = _html(admin.get("/console/customers/suggestions"))
    rows = [int(i) for i in re.findall(r'data-testid="suggestion-row" data-suggestion-id="(\d+)"', page)]
    assert len(rows) == 2
    first, second = sorted(rows)
    bad = admin.post(f"/console/customers/suggestions/{first}/accept", {"reason": ""})
    assert bad.status_code == 422 and 'data-testid="error-reason"' in _html(bad)
    assert admin.post(f"/console/customers/suggestions/{first}/accept", {"reason": "same person"}).status_code == 302
    assert admin.post(f"/console/customers/suggestions/{second}/reject", {"reason": "namesakes"}).status_code == 302
    db.session.expire_all()
    statuses = {s.id: s.status for s in db.session.scalars(select(MergeSuggestion))}
    assert statuses == {first: SuggestionStatus.accepted, second: SuggestionStatus.rejected}
    assert customers.resolve_id(corp.id, ids[1]) == ids[0]
    decided = _html(admin.get("/console/customers/suggestions?status=accepted"))
    assert f'data-suggestion-id="{first}"' in decided and "王五" in decided


def test_tags_form_reaches_wecom(console_login, sim, db):
    """Does the 360 page's tag form add and remove tags in WeCom (the simulator), and refuse a
    forged tag id in place?"""
    sim.control.seed_demo()
    sync.run(corps.env_corp_id())
    zhang = db.session.scalar(select(Staff).where(Staff.userid == "zhangwei"))
    rep = console_login("rep", staff=zhang)
    row = _row_ids(_html(rep.get("/console/customers")))
    assert len(row) == 1
    customer_id = row[0]
    expo = db.session.scalar(select(Tag).where(Tag.name == "展会"))
    web = db.session.scalar(select(Tag).where(Tag.name == "官网"))
    bad = rep.post(f"/console/customers/{customer_id}/tags", {"staff_id": str(zhang.id), "add_tag_ids": "987654"})
    assert bad.status_code == 422 and 'data-testid="error-add_tag_ids"' in _html(bad)
    resp = rep.post(
        f"/console/customers/{customer_id}/tags",
        [("staff_id", str(zhang.id)), ("add_tag_ids", str(web.id)), ("remove_tag_ids", str(expo.id))],
    )
    assert resp.status_code == 302
    follows = sim.control.state("follows")["follows"]
    external_userid = db.session.scalar(
        select(Identity.value).where(Identity.customer_id == customer_id, Identity.type == IdentityType.external_userid)
    )
    follow = next(f for f in follows if f["userid"] == "zhangwei" and f["external_userid"] == external_userid)
    assert follow["tag_id"] == [web.wecom_tag_id]
    assert 'data-testid="tag">客户来源 / 官网<' in _html(rep.get(f"/console/customers/{customer_id}"))
