"""Contact codes in the console: the full rule form, field errors, edit, status, poster, stats."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models import CodeStatus, ContactCode
from tests import factories

REPS = {"zhangwei": "张伟", "lina": "李娜", "wangfang": "王芳"}


@pytest.fixture
def world(sim, corp):
    """The simulator's demo corp, with our staff rows for three of its reps."""
    seeded = sim.control.seed_demo()
    for userid, name in REPS.items():
        factories.staff(corp, userid=userid, name=name)
    return seeded


FULL_FORM = [
    ("name", "Expo 2026 booth"),
    ("channel", "expo-2026"),
    ("mode", "routed"),
    ("state", "expo2026"),
    ("strategy", "least_loaded"),
    ("expires_at", "2099-12-31T18:00"),
    ("skip_verify", "false"),
    ("members.0.userid", "zhangwei"),
    ("members.0.weight", "3"),
    ("members.0.daily_cap", "20"),
    ("members.0.total_cap", "500"),
    ("members.0.backup", "false"),
    ("members.0.paused", "false"),
    ("members.1.userid", "lina"),
    ("members.1.weight", "1"),
    ("members.1.backup", "false"),
    ("members.1.paused", "false"),
    ("members.1.paused", "true"),  # checkbox ticked: the hidden "false" is followed by "true"
    ("members.2.userid", "wangfang"),
    ("members.2.backup", "false"),
    ("members.2.backup", "true"),
    # A spare blank row, as the form always posts one.
    ("members.3.userid", ""),
    ("members.3.backup", "false"),
    ("schedule.enabled", "false"),
    ("schedule.enabled", "true"),
    ("schedule.timezone", "Asia/Shanghai"),
    ("schedule.slots.0.weekdays", "1"),
    ("schedule.slots.0.weekdays", "2"),
    ("schedule.slots.0.weekdays", "3"),
    ("schedule.slots.0.start", "09:00"),
    ("schedule.slots.0.end", "18:00"),
    ("schedule.slots.1.weekdays", "6"),
    ("schedule.slots.1.start", "10:00"),
    ("schedule.slots.1.end", "16:00"),
    ("schedule.exceptions.0.date", "2099-10-01"),
    ("schedule.exceptions.0.slots", ""),
    ("schedule.exceptions.1.date", "2099-10-08"),
    ("schedule.exceptions.1.slots", "09:00-12:00, 14:00-17:30"),
    ("welcome.text", "您好 {customer_name}，我是{rep_name}（{channel}）"),
    ("welcome.attachments.0.type", "link"),
    ("welcome.attachments.0.title", "{code_name} 资料"),
    ("welcome.attachments.0.url", "https://example.com/expo"),
    ("welcome.attachments.1.type", "miniprogram"),
    ("welcome.attachments.1.title", "我的名片"),
    ("welcome.attachments.1.pic_media_id", "MEDIA1"),
    ("welcome.attachments.1.page", "pages/card?rep={rep_userid}"),
    ("tags.0.name", "expo-2026"),
    ("tags.1.name", "展会"),
    ("tags.1.group_name", "客户来源"),
    ("tags.2.name", ""),
]


def _codes(db) -> int:
    return db.session.scalar(select(func.count()).select_from(ContactCode))


def _create(session, form=FULL_FORM):
    resp = session.post("/console/contact-codes/new", form)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return int(resp.headers["Location"].rstrip("/").split("/")[-1])


def test_create_with_every_rule_field(world, db, sim, console_login):
    """Does the form store every rule: mode, pool, caps, backups, strategy, schedule, welcome, tags, expiry?"""
    session = console_login("admin")
    assert session.get("/console/contact-codes/new").status_code == 200
    code = db.session.get(ContactCode, _create(session))
    assert (code.name, code.channel, code.mode.value, code.state, code.strategy.value) == (
        "Expo 2026 booth",
        "expo-2026",
        "routed",
        "expo2026",
        "least_loaded",
    )
    assert code.skip_verify is False
    assert code.expires_at.isoformat() == "2099-12-31T10:00:00+00:00"  # 18:00 in Shanghai
    members = {m.staff.userid: m for m in code.members}
    assert [m.staff.userid for m in code.members] == ["zhangwei", "lina", "wangfang"]
    assert (members["zhangwei"].weight, members["zhangwei"].daily_cap, members["zhangwei"].total_cap) == (3, 20, 500)
    assert members["lina"].paused and not members["lina"].backup
    assert members["wangfang"].backup and members["wangfang"].weight == 1
    assert code.schedule == {
        "timezone": "Asia/Shanghai",
        "slots": [
            {"weekdays": [1, 2, 3], "start": "09:00", "end": "18:00"},
            {"weekdays": [6], "start": "10:00", "end": "16:00"},
        ],
        "exceptions": [
            {"date": "2099-10-01", "slots": []},
            {"date": "2099-10-08", "slots": [{"start": "09:00", "end": "12:00"}, {"start": "14:00", "end": "17:30"}]},
        ],
    }
    assert code.welcome["text"] == "您好 {customer_name}，我是{rep_name}（{channel}）"
    assert [a["type"] for a in code.welcome["attachments"]] == ["link", "miniprogram"]
    assert code.welcome["attachments"][1]["page"] == "pages/card?rep={rep_userid}"
    assert code.tags == [{"name": "expo-2026", "group_name": "渠道活码"}, {"name": "展会", "group_name": "客户来源"}]
    # routed mode: every member got their own single-person WeCom way.
    ways = {w["config_id"] for w in sim.control.state("contact_ways")["contact_ways"]}
    assert all(m.config_id in ways for m in code.members)
    detail = session.get(f"/console/contact-codes/{code.id}").get_data(as_text=True)
    assert 'data-userid="zhangwei"' in detail and "expo2026" in detail


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"members.0.weight": "0"}, "members.0.weight"),
        ({"members.0.userid": "nobody"}, "members.0.userid"),
        ({"schedule.slots.0.end": "08:00"}, "schedule.slots.0.end"),
        ({"schedule.exceptions.1.slots": "09:00-25:00"}, "schedule.exceptions.1.slots"),
        ({"schedule.timezone": "Mars/Base"}, "schedule.timezone"),
        ({"welcome.text": "hi {nobody}"}, "welcome.text"),
        ({"welcome.attachments.0.url": "not a url"}, "welcome.attachments.0.url"),
        ({"expires_at": "2001-01-01T00:00"}, "expires_at"),
        ({"state": "has spaces"}, "state"),
    ],
)
def test_field_errors_show_in_place_and_nothing_is_stored(world, db, sim, console_login, changes, field):
    """Is a bad field answered 422 with its error beside it, the posted values kept, and no code or WeCom way made?"""
    form = [(k, changes.get(k, v)) for k, v in FULL_FORM]
    session = console_login("admin")
    ways_before = len(sim.control.state("contact_ways")["contact_ways"])
    resp = session.post("/console/contact-codes/new", form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f'data-testid="error-{field}"' in html
    assert 'value="expo-2026"' in html  # what was typed stays in the form
    assert _codes(db) == 0
    assert len(sim.control.state("contact_ways")["contact_ways"]) == ways_before


def test_a_pool_of_only_backups_is_refused(world, db, console_login):
    """Is a pool with no active member refused with the error at the pool, nothing stored?"""
    form = [(k, v) for k, v in FULL_FORM if not k.startswith("members.")] + [
        ("members.0.userid", "zhangwei"),
        ("members.0.backup", "true"),
    ]
    resp = console_login("admin").post("/console/contact-codes/new", form)
    assert resp.status_code == 422
    assert 'data-testid="error-members"' in resp.get_data(as_text=True)
    assert _codes(db) == 0


def test_edit_changes_rules_and_prefills_the_form(world, db, console_login):
    """Does the edit form show the stored rules and save a changed pool, schedule and welcome?"""
    session = console_login("admin")
    code_id = _create(session)
    page = session.get(f"/console/contact-codes/{code_id}/edit").get_data(as_text=True)
    assert 'name="members.0.weight" value="3"' in page
    assert 'name="schedule.exceptions.1.slots" value="09:00-12:00, 14:00-17:30"' in page
    form = [
        (k, v)
        for k, v in FULL_FORM
        if k not in ("mode", "state") and not k.startswith(("members.2", "schedule.", "welcome.attachments"))
    ]
    form = [(k, "Expo booth B" if k == "name" else "8" if k == "members.0.weight" else v) for k, v in form]
    form += [("schedule.enabled", "false"), ("welcome.text", "Hello {customer_name}")]
    form = [(k, v) for k, v in form if k != "welcome.text" or v == "Hello {customer_name}"]
    resp = session.post(f"/console/contact-codes/{code_id}/edit", form)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    db.session.expire_all()
    code = db.session.get(ContactCode, code_id)
    assert code.name == "Expo booth B"
    assert [m.staff.userid for m in code.members] == ["zhangwei", "lina"]
    assert code.members[0].weight == 8
    assert code.schedule is None
    assert code.welcome == {"text": "Hello {customer_name}", "attachments": []}
    assert code.mode.value == "routed" and code.state == "expo2026"


def test_edit_with_an_error_keeps_the_stored_code(world, db, console_login):
    """Does an edit with an emptied name answer 422 in place and leave the code unchanged?"""
    session = console_login("admin")
    code_id = _create(session)
    form = [(k, "" if k == "name" else v) for k, v in FULL_FORM if k not in ("mode", "state")]
    resp = session.post(f"/console/contact-codes/{code_id}/edit", form)
    assert resp.status_code == 422
    assert 'data-testid="error-name"' in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ContactCode, code_id).name == "Expo 2026 booth"


def test_pause_resume_archive(world, db, console_login):
    """Do pause, resume and archive change the code's status (and archive remove its WeCom ways)?"""
    session = console_login("admin")
    code_id = _create(session)
    for action, status in (
        ("pause", CodeStatus.paused),
        ("resume", CodeStatus.active),
        ("archive", CodeStatus.archived),
    ):
        assert session.post(f"/console/contact-codes/{code_id}/{action}").status_code == 302
        db.session.expire_all()
        assert db.session.get(ContactCode, code_id).status == status
    html = session.get(f"/console/contact-codes/{code_id}").get_data(as_text=True)
    assert 'data-testid="edit-code"' not in html


def test_pause_without_csrf_changes_nothing(world, db, console_login):
    """Is a pause posted without the CSRF token refused with 400, the code still active?"""
    session = console_login("admin")
    code_id = _create(session)
    assert session.post(f"/console/contact-codes/{code_id}/pause", csrf=False).status_code == 400
    db.session.expire_all()
    assert db.session.get(ContactCode, code_id).status == CodeStatus.active


def test_poster_is_a_png(world, console_login):
    """Is the poster download a PNG image?"""
    session = console_login("admin")
    code_id = _create(session)
    resp = session.get(f"/console/contact-codes/{code_id}/poster.png")
    assert resp.status_code == 200
    assert resp.mimetype == "image/png"
    assert resp.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_list_filters_and_paginates(world, db, console_login):
    """Does the list filter by status, mode and text, and paginate?"""
    session = console_login("admin")
    first = _create(session)
    second_form = [
        (k, {"name": "Website", "channel": "web", "state": "web1", "mode": "wecom"}.get(k, v)) for k, v in FULL_FORM
    ]
    _create(session, second_form)
    session.post(f"/console/contact-codes/{first}/pause")
    html = session.get("/console/contact-codes?status=paused").get_data(as_text=True)
    assert html.count('data-testid="code-row"') == 1 and "Expo 2026 booth" in html
    html = session.get("/console/contact-codes?mode=wecom").get_data(as_text=True)
    assert html.count('data-testid="code-row"') == 1 and "Website" in html
    html = session.get("/console/contact-codes?q=web").get_data(as_text=True)
    assert html.count('data-testid="code-row"') == 1
    html = session.get("/console/contact-codes?per_page=1").get_data(as_text=True)
    assert html.count('data-testid="code-row"') == 1 and 'data-testid="pager-next"' in html
    assert session.get("/console/contact-codes?status=bogus").status_code == 422


def test_stats_per_day_and_rep_with_csv(world, db, sim, run_jobs, console_login):
    """After a scan and add through the code, do the stats page and CSV count the add for its
    rep, and does the code's page list the customer and WeCom's assignment?"""
    session = console_login("admin")
    form = [(k, v) for k, v in FULL_FORM if not k.startswith(("schedule.", "members."))] + [
        ("mode", "wecom"),
        ("members.0.userid", "zhangwei"),
    ]
    # Added without the rep confirming (skip_verify), so the scan is an add at once.
    form = [(k, "true" if k == "skip_verify" else v) for k, v in form if k != "mode" or v == "wecom"]
    code = db.session.get(ContactCode, _create(session, form))
    sim.control.scan(config_id=code.config_id, customer={"name": "王五"})
    sim.control.flush_callbacks()
    run_jobs()
    resp = session.get(f"/console/contact-codes/{code.id}/stats")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert html.split('data-testid="total-adds">')[1].split("<")[0] == "1"
    assert html.split('data-testid="rep-adds-zhangwei">')[1].split("<")[0] == "1"
    csv = session.get(f"/console/contact-codes/{code.id}/stats.csv")
    assert csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("day,userid,name")
    assert any(",zhangwei,张伟,0,1," in line for line in lines[1:])
    assert session.get(f"/console/contact-codes/{code.id}/stats?from=2026-05-01&to=2026-04-01").status_code == 422
    detail = session.get(f"/console/contact-codes/{code.id}").get_data(as_text=True)
    assert detail.count('data-testid="code-add"') == 1 and 'data-userid="zhangwei"' in detail
    assert detail.count('data-testid="code-assignment" data-kind="wecom"') == 1
    assert 'data-testid="pager-adds_page-status">page 1 of 1 · 1 in all<' in detail


def test_rep_reads_own_codes_but_cannot_change_them(world, db, corp, console_login):
    """Does a rep see only the codes they are in, without edit or stats, and get 403 on changes?"""
    admin = console_login("admin")
    code_id = _create(admin)
    outsider = factories.staff(corp, userid="outsider")
    lina = db.session.scalar(select(ContactCode)).members[1].staff
    rep = console_login("rep", staff=lina)
    html = rep.get("/console/contact-codes").get_data(as_text=True)
    assert html.count('data-testid="code-row"') == 1 and 'data-testid="new-code"' not in html
    detail = rep.get(f"/console/contact-codes/{code_id}").get_data(as_text=True)
    assert 'data-testid="edit-code"' not in detail and 'data-testid="pause-form"' not in detail
    assert 'data-testid="code-adds"' not in detail  # other reps' customers: admins only
    assert rep.post(f"/console/contact-codes/{code_id}/pause").status_code == 403
    assert rep.get(f"/console/contact-codes/{code_id}/edit").status_code == 403
    assert rep.get(f"/console/contact-codes/{code_id}/stats").status_code == 403
    other = console_login("rep", staff=outsider)
    assert other.get(f"/console/contact-codes/{code_id}").status_code == 404
    assert other.get(f"/console/contact-codes/{code_id}/poster.png").status_code == 404
    db.session.expire_all()
    assert db.session.get(ContactCode, code_id).status == CodeStatus.active
