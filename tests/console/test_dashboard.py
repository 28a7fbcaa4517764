"""The dashboard: adds per day by channel, lost customers, alerts sent, hand-overs running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.models import (
    Alert,
    AlertDelivery,
    AlertKind,
    CodeMode,
    ContactCode,
    DeletedBy,
    DeliveryState,
    FollowStatus,
    Handover,
    HandoverKind,
    HandoverStatus,
    HandoverTrigger,
)
from tests import factories

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _local(day: str, hour: int) -> datetime:
    """A UTC timestamp at ``hour`` o'clock Beijing time on ``day``."""
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=SHANGHAI).astimezone(UTC)


def _code(db, corp, state, channel):
    code = ContactCode(corp_id=corp.id, name=channel, channel=channel, mode=CodeMode.wecom, state=state)
    db.session.add(code)
    db.session.commit()
    return code


def _alert_sent(db, corp, staff, at):
    alert = Alert(
        corp_id=corp.id, kind=AlertKind.card_opened, staff_id=staff.id, subject_key="s", dedupe_key=f"d{at}", title="t"
    )
    db.session.add(alert)
    db.session.flush()
    db.session.add(
        AlertDelivery(
            corp_id=corp.id,
            alert_id=alert.id,
            staff_id=staff.id,
            userid=staff.userid,
            state=DeliveryState.sent,
            sent_at=at,
        )
    )
    db.session.commit()


def _world(db, corp):
    """Two reps; adds on 2026-03-02 and 03-03 (Beijing days) from two codes and a card."""
    wang, li = factories.staff(corp, userid="wang"), factories.staff(corp, userid="li")
    _code(db, corp, "cc_expo", "expo")
    _code(db, corp, "cc_web", "website")
    for state, rep, at in [
        ("cc_expo", wang, _local("2026-03-02", 1)),  # 17:00 UTC the day before: counts on 03-02 locally
        ("cc_expo", wang, _local("2026-03-02", 12)),
        ("cc_web", li, _local("2026-03-02", 23)),
        ("cc_expo", li, _local("2026-03-03", 9)),
        ("card:7", wang, _local("2026-03-03", 10)),
    ]:
        factories.follow(corp, rep, factories.customer(corp), state=state, added_at=at)
    # A customer moved by a hand-over is not an add.
    factories.follow(corp, li, factories.customer(corp), state="cc_web", added_at=_local("2026-03-03", 11), add_way=202)
    gone = factories.customer(corp)
    factories.follow(
        corp,
        wang,
        gone,
        state="cc_expo",
        added_at=_local("2026-02-20", 9),
        status=FollowStatus.deleted,
        deleted_by=DeletedBy.customer,
        deleted_at=_local("2026-03-03", 8),
    )
    # The rep deleting a customer is not a customer lost.
    factories.follow(
        corp,
        li,
        factories.customer(corp),
        added_at=_local("2026-02-20", 9),
        status=FollowStatus.deleted,
        deleted_by=DeletedBy.staff,
        deleted_at=_local("2026-03-03", 8),
    )
    _alert_sent(db, corp, wang, _local("2026-03-02", 15))
    _alert_sent(db, corp, li, _local("2026-03-03", 15))
    db.session.add(
        Handover(
            corp_id=corp.id,
            kind=HandoverKind.resigned,
            trigger=HandoverTrigger.admin,
            handover_staff_id=li.id,
            status=HandoverStatus.running,
        )
    )
    db.session.commit()
    return wang, li


RANGE = "/console/?date_from=2026-03-01&date_to=2026-03-03"


def _cell(html, testid):
    return html.split(f'data-testid="{testid}">')[1].split("<")[0]


def test_admin_sees_the_corp_per_day_and_channel(app, corp, db, console_login):
    """Does the admin's dashboard count adds per Beijing day and channel, lost customers, alerts and hand-overs?"""
    _world(db, corp)
    html = console_login("admin").get(RANGE).get_data(as_text=True)
    assert _cell(html, "adds-2026-03-01") == "0"
    assert _cell(html, "adds-2026-03-02") == "3"
    assert _cell(html, "adds-2026-03-03") == "2"
    assert _cell(html, "total-adds") == "5"
    assert _cell(html, "lost-2026-03-03") == "1"
    assert _cell(html, "total-lost") == "1"
    assert _cell(html, "total-alerts-sent") == "2"
    assert _cell(html, "handovers-running") == "1"
    assert 'data-series="expo" data-value="2"' in html  # two expo adds on 03-02, one bar segment
    assert 'data-series="business card"' in html
    assert 'data-testid="chart-adds"' in html and "<svg" in html


def test_rep_sees_only_their_own_numbers(app, corp, db, console_login):
    """Does a rep's dashboard count only their own adds, losses and alerts (and no one else's hand-over)?"""
    wang, _ = _world(db, corp)
    html = console_login("rep", staff=wang).get(RANGE).get_data(as_text=True)
    assert _cell(html, "total-adds") == "3"
    assert _cell(html, "adds-2026-03-02") == "2"
    assert _cell(html, "total-lost") == "1"
    assert _cell(html, "total-alerts-sent") == "1"
    assert _cell(html, "handovers-running") == "0"
    assert 'data-series="website"' not in html


def test_another_corp_is_not_counted(app, corp, db, console_login):
    """Are adds of another corp left out of the admin's dashboard?"""
    from app.models import Corp

    other = Corp(wecom_corp_id="ww_other", name="other")
    db.session.add(other)
    db.session.commit()
    rep = factories.staff(other)
    factories.follow(other, rep, factories.customer(other), added_at=_local("2026-03-02", 12))
    html = console_login("admin").get(RANGE).get_data(as_text=True)
    assert _cell(html, "total-adds") == "0"


def test_default_range_is_the_last_14_days(app, corp, db, console_login):
    """Without a range, does the dashboard show 14 days ending today and count today's add?"""
    rep = factories.staff(corp)
    factories.follow(corp, rep, factories.customer(corp), added_at=datetime.now(UTC) - timedelta(minutes=1))
    html = console_login("admin").get("/console/").get_data(as_text=True)
    assert html.count("<tr data-day=") == 14
    assert _cell(html, "total-adds") == "1"


def test_bad_range_is_a_field_error(app, corp, console_login):
    """Is a reversed range or a non-date answered 422 with the error beside the field?"""
    session = console_login("admin")
    resp = session.get("/console/?date_from=2026-03-05&date_to=2026-03-01")
    assert resp.status_code == 422
    assert 'data-testid="error-date_from"' in resp.get_data(as_text=True)
    resp = session.get("/console/?date_to=yesterday")
    assert resp.status_code == 422
    assert 'data-testid="error-date_to"' in resp.get_data(as_text=True)
