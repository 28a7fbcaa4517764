"""Console audit log: newest first, filters (actor, action prefix, target, date range), pages,
field errors in place; admins only."""

from __future__ import annotations

import re
from datetime import timedelta

from app.models import AuditLog, utcnow
from app.services import audit
from tests import factories


def _ids(resp) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="audit-row" data-audit-id="(\d+)"', resp.get_data(as_text=True))]


def _entries(db, corp):
    """Audit entries as services write them, some backdated to test the date range."""
    rows = [
        audit.record(corp.id, "user:1", "customer.merge", "customer", 7, reason="same phone"),
        audit.record(corp.id, "user:1", "customer.note.add", "customer", 7, data={"note_id": 1}),
        audit.record(corp.id, "system", "handover.customer.done", "customer", 8),
        audit.record(corp.id, "user:2", "alerts.rule.update", "alert_rule", 3),
        audit.record(corp.id, "user:2", "customer_like.thing", "customer", 9),
    ]
    db.session.flush()
    rows[0].created_at = utcnow() - timedelta(days=10)
    db.session.commit()
    return [r.id for r in rows]


def test_filters_and_order(console_login, db, corp):
    """Do actor, action prefix, target and date filters narrow the newest-first list?"""
    ids = _entries(db, corp)
    admin = console_login("admin")  # signing up writes a user.create entry too
    everything = _ids(admin.get("/console/audit"))
    assert set(ids) <= set(everything) and everything.index(ids[4]) < everything.index(ids[1])
    assert _ids(admin.get("/console/audit?actor=user:2")) == [ids[4], ids[3]]
    assert _ids(admin.get("/console/audit?action_prefix=customer.")) == [ids[1], ids[0]]
    # "_" is matched literally, not as LIKE's any-character.
    assert _ids(admin.get("/console/audit?action_prefix=customer_")) == [ids[4]]
    assert _ids(admin.get("/console/audit?target_type=customer&target_id=7")) == [ids[1], ids[0]]
    today = utcnow().date()
    recent = _ids(admin.get(f"/console/audit?action_prefix=customer.&date_from={today - timedelta(days=1)}"))
    assert recent == [ids[1]]
    old = _ids(admin.get(f"/console/audit?date_to={today - timedelta(days=5)}"))
    assert old == [ids[0]]


def test_pages(console_login, db, corp):
    """Does the log page through its entries, keeping the filters in the links?"""
    for n in range(12):
        audit.record(corp.id, "system", "sync.run", "corp", n)
    db.session.commit()
    admin = console_login("admin")
    first = admin.get("/console/audit?action_prefix=sync.&per_page=5")
    html = first.get_data(as_text=True)
    assert len(_ids(first)) == 5 and "page 1 of 3 · 12 in all" in html
    assert re.search(r'href="[^"]*action_prefix=sync.[^"]*" rel="next"', html)
    assert len(_ids(admin.get("/console/audit?action_prefix=sync.&per_page=5&page=3"))) == 2


def test_bad_filters_are_errors_in_place(console_login, db, corp):
    """Are a bad date and a reversed range answered 422 with the error beside the field?"""
    admin = console_login("admin")
    bad = admin.get("/console/audit?date_from=yesterday")
    assert bad.status_code == 422 and 'data-testid="error-date_from"' in bad.get_data(as_text=True)
    reversed_range = admin.get("/console/audit?date_from=2026-12-04&date_to=2026-12-01")
    assert reversed_range.status_code == 422
    assert 'data-testid="error-date_to"' in reversed_range.get_data(as_text=True)


def test_reps_cannot_read_the_log(console_login, db, corp):
    """Is the audit log closed to reps (403)?"""
    rep = console_login("rep", staff=factories.staff(corp))
    assert rep.get("/console/audit").status_code == 403
    assert db.session.query(AuditLog).count() >= 1
