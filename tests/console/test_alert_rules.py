"""Console alert rules: list, create per kind with field errors in place, edit, switch, delete
(never a default); reps read only; CSRF."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.models import AlertKind, AlertRule, AuditLog
from tests import factories


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _count() -> int:
    from app.extensions import db

    return db.session.scalar(select(func.count()).select_from(AlertRule))


def _rule(db, **where) -> AlertRule:
    db.session.expire_all()
    return db.session.scalar(select(AlertRule).filter_by(**where))


def test_list_shows_the_defaults_and_pages(console_login):
    """Does the list show one default per kind, paged, with no delete button on defaults?"""
    admin = console_login("admin")
    html = _html(admin.get("/console/alert-rules"))
    kinds = re.findall(r'data-testid="rule-row" data-rule-id="\d+" data-kind="(\w+)"', html)
    assert sorted(kinds) == sorted(str(k) for k in AlertKind)
    assert 'data-testid="rule-delete"' not in html and 'data-testid="rule-new"' in html
    page = _html(admin.get("/console/alert-rules?per_page=4&page=3"))
    assert len(re.findall(r'data-testid="rule-row"', page)) == len(AlertKind) - 8
    assert admin.get("/console/alert-rules?page=0").status_code == 422


def test_create_a_rule_per_kind(console_login, db):
    """Can an admin create a content-read rule with its own threshold, listed and audited?"""
    admin = console_login("admin")
    assert 'data-testid="rule-kind-content_read"' in _html(admin.get("/console/alert-rules/new"))
    form = _html(admin.get("/console/alert-rules/new?kind=content_read"))
    assert 'name="params.min_seconds"' in form and 'name="params.min_visits"' not in form
    resp = admin.post(
        "/console/alert-rules/new",
        {
            "kind": "content_read",
            "name": "Long reads",
            "audience": "rep_and_admins",
            "window_seconds": "600",
            "enabled": "true",
            "params.min_seconds": "90",
        },
    )
    assert resp.status_code == 302
    rule = _rule(db, name="Long reads")
    assert rule.kind == AlertKind.content_read and rule.params == {"min_seconds": 90} and rule.window_seconds == 600
    assert db.session.scalar(select(AuditLog.id).where(AuditLog.action == "alerts.rule.create")) is not None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"kind": "content_read", "name": "", "params.min_seconds": "30"}, "name"),
        ({"kind": "content_read", "name": "x", "params.min_seconds": "0"}, "params.min_seconds"),
        ({"kind": "card_opened", "name": "x", "params.min_visits": "lots"}, "params.min_visits"),
        ({"kind": "contact_click", "name": "x", "params.actions": ""}, "params.actions"),
        ({"kind": "shared", "name": "x", "window_seconds": "-5"}, "window_seconds"),
        ({"kind": "shared", "name": "x", "audience": "everyone"}, "audience"),
    ],
)
def test_bad_input_shows_errors_in_place_and_stores_nothing(console_login, db, form, field):
    """Is each bad field answered 422 with its error in place, what was typed kept, and no rule stored?"""
    admin = console_login("admin")
    admin.get("/console/alert-rules")  # the defaults exist
    before = _count()
    resp = admin.post("/console/alert-rules/new", form)
    assert resp.status_code == 422
    html = _html(resp)
    assert f'data-testid="error-{field}"' in html
    assert _count() == before


def test_every_bad_field_shows_at_once(console_login):
    """With a blank name and no click chosen, are both errors shown on the first submit?"""
    resp = console_login("admin").post(
        "/console/alert-rules/new", {"kind": "contact_click", "name": "", "params.actions": ""}
    )
    html = _html(resp)
    assert resp.status_code == 422
    assert 'data-testid="error-name"' in html and 'data-testid="error-params.actions"' in html


def test_a_taken_name_is_an_error_beside_the_name(console_login, db):
    """Is a second rule with a taken name refused beside the name field?"""
    admin = console_login("admin")
    admin.post("/console/alert-rules/new", {"kind": "shared", "name": "Shares"})
    resp = admin.post("/console/alert-rules/new", {"kind": "shared", "name": "Shares"})
    assert resp.status_code == 422 and 'data-testid="error-name"' in _html(resp)


def test_edit_switch_and_delete(console_login, db):
    """Can an admin edit a rule's params (validated), switch it off and on, delete their own but not a default?"""
    admin = console_login("admin")
    admin.get("/console/alert-rules")
    default = _rule(db, default_of=AlertKind.card_opened)
    form = _html(admin.get(f"/console/alert-rules/{default.id}"))
    assert 'name="params.min_visits"' in form and 'name="kind"' not in form
    bad = admin.post(f"/console/alert-rules/{default.id}", {"name": default.name, "params.min_visits": "0"})
    assert bad.status_code == 422 and 'data-testid="error-params.min_visits"' in _html(bad)
    assert _rule(db, id=default.id).params == {"min_visits": 1}
    ok = admin.post(
        f"/console/alert-rules/{default.id}",
        {
            "name": "Returning visitors",
            "audience": "rep",
            "window_seconds": "900",
            "enabled": "true",
            "params.min_visits": "2",
        },
    )
    assert ok.status_code == 302
    rule = _rule(db, id=default.id)
    assert (rule.name, rule.params, rule.window_seconds) == ("Returning visitors", {"min_visits": 2}, 900)
    assert admin.post(f"/console/alert-rules/{default.id}/switch", {"enabled": "false"}).status_code == 302
    assert _rule(db, id=default.id).enabled is False
    admin.post(f"/console/alert-rules/{default.id}/switch", {"enabled": "true"})
    assert _rule(db, id=default.id).enabled is True
    refused = admin.post(f"/console/alert-rules/{default.id}/delete", follow_redirects=True)
    assert "cannot be deleted" in _html(refused) and _rule(db, id=default.id) is not None
    admin.post("/console/alert-rules/new", {"kind": "shared", "name": "Mine"})
    mine = _rule(db, name="Mine")
    assert admin.post(f"/console/alert-rules/{mine.id}/delete").status_code == 302
    assert _rule(db, name="Mine") is None


def test_reps_read_but_do_not_write(console_login, corp, db):
    """May a rep read the rules but neither open the forms nor post changes?"""
    rep = console_login("rep", staff=factories.staff(corp))
    html = _html(rep.get("/console/alert-rules"))
    assert 'data-testid="rule-row"' in html and 'data-testid="rule-new"' not in html
    default = _rule(db, default_of=AlertKind.shared)
    assert rep.get("/console/alert-rules/new").status_code == 403
    assert rep.get(f"/console/alert-rules/{default.id}").status_code == 403
    assert rep.post(f"/console/alert-rules/{default.id}/switch", {"enabled": "false"}).status_code == 403
    assert _rule(db, id=default.id).enabled is True


def test_posts_without_csrf_are_refused(console_login, db):
    """Is a rule post without the CSRF token refused with 400, nothing stored?"""
    admin = console_login("admin")
    admin.get("/console/alert-rules")
    before = _count()
    resp = admin.post("/console/alert-rules/new", {"kind": "shared", "name": "No token"}, csrf=False)
    assert resp.status_code == 400 and _count() == before
    default = _rule(db, default_of=AlertKind.shared)
    assert admin.post(f"/console/alert-rules/{default.id}/switch", {"enabled": "false"}, csrf=False).status_code == 400
    assert _rule(db, id=default.id).enabled is True
