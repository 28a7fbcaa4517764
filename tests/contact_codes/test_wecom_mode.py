"""wecom mode: the WeCom way's user list follows schedule, caps, backups and resignations."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.models import AuditLog, CodeStatus, ContactCode
from app.services import contact_codes
from app.services.contact_codes import wecom_sync
from jobs.schedules import definitions, tick

from .conftest import settle, way

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Monday 2 March 2026, Shanghai time.
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
MONDAY_18 = datetime(2026, 3, 2, 18, 0, tzinfo=SHANGHAI)
SATURDAY_10 = datetime(2026, 3, 7, 10, 0, tzinfo=SHANGHAI)
WORKDAYS = {
    "timezone": "Asia/Shanghai",
    "slots": [{"weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}],
    "exceptions": [
        {"date": "2026-03-09", "slots": []},
        {"date": "2026-03-08", "slots": [{"start": "10:00", "end": "12:00"}]},
    ],
}


def _users(sim, code) -> list[str]:
    return way(sim, code["config_id"])["user"]


def test_schedule_boundaries_and_backup_switch_the_list(world, create_code, sim):
    """At each schedule boundary (and on exception dates) does WeCom's list switch between pool and backup?"""
    code = create_code(
        schedule=WORKDAYS, members=[{"userid": "zhangwei"}, {"userid": "lina"}, {"userid": "chenjing", "backup": True}]
    )
    steps = [
        (MONDAY_10, ["zhangwei", "lina"]),
        (MONDAY_18 - timedelta(minutes=1), ["zhangwei", "lina"]),
        (MONDAY_18, ["chenjing"]),  # slots end exclusive
        (SATURDAY_10, ["chenjing"]),
        (datetime(2026, 3, 8, 11, 0, tzinfo=SHANGHAI), ["zhangwei", "lina"]),  # a working Sunday
        (datetime(2026, 3, 9, 10, 0, tzinfo=SHANGHAI), ["chenjing"]),  # a Monday holiday
        (datetime(2026, 3, 10, 1, 30, tzinfo=UTC), ["zhangwei", "lina"]),  # 09:30 in Shanghai
    ]
    for now, expected in steps:
        wecom_sync.sync_code(code["id"], now)
        assert _users(sim, code) == expected, now


def test_update_is_called_only_when_the_list_changes(world, create_code, sim, db):
    """Do repeated syncs with nothing changed leave WeCom alone (no update_contact_way)?"""
    code = create_code(schedule=WORKDAYS, members=[{"userid": "zhangwei"}, {"userid": "chenjing", "backup": True}])
    wecom_sync.sync_code(code["id"], SATURDAY_10)  # whatever the list was at creation: the backup now
    assert wecom_sync.sync_code(code["id"], MONDAY_10) is True
    settled = way(sim, code["config_id"])["updates"]
    for minute in range(1, 6):
        assert wecom_sync.sync_code(code["id"], MONDAY_10 + timedelta(minutes=minute)) is False
    assert way(sim, code["config_id"])["updates"] == settled
    assert wecom_sync.sync_code(code["id"], MONDAY_18) is True
    assert way(sim, code["config_id"])["updates"] == settled + 1
    change = db.session.query(AuditLog).filter_by(action="contact_code.users_changed").order_by(AuditLog.id).all()[-1]
    assert change.data["after"] == ["chenjing"] and change.data["backup"] is True
    assert change.data["excluded"] == {"zhangwei": "outside schedule"}


def test_reaching_a_cap_updates_the_list_at_once(world, create_code, sim, run_jobs, db):
    """When an add fills a rep's daily cap, is the rep taken off WeCom's list without waiting for the tick?"""
    code = create_code(members=[{"userid": "zhangwei", "daily_cap": 1}, {"userid": "lina"}])
    sim.control.scan(config_id=code["config_id"], userid="zhangwei")
    settle(sim, run_jobs)
    assert _users(sim, code) == ["lina"]
    change = db.session.query(AuditLog).filter_by(action="contact_code.users_changed").one()
    assert change.reason == "cap reached" and change.data["excluded"] == {"zhangwei": "daily cap 1 reached"}
    # Midnight (Shanghai) resets daily caps: the next tick puts the rep back.
    tomorrow = datetime.now(SHANGHAI).replace(hour=0, minute=1) + timedelta(days=1)
    assert wecom_sync.sync_code(code["id"], tomorrow) is True
    assert _users(sim, code) == ["zhangwei", "lina"]


def test_total_cap_is_held_across_days(world, create_code, sim, run_jobs):
    """Does a rep at their total cap stay off the list on the following days?"""
    code = create_code(members=[{"userid": "zhangwei", "total_cap": 1}, {"userid": "lina"}])
    sim.control.scan(config_id=code["config_id"], userid="zhangwei")
    settle(sim, run_jobs)
    wecom_sync.sync_code(code["id"], datetime.now(UTC) + timedelta(days=3))
    assert _users(sim, code) == ["lina"]


def test_resigned_rep_leaves_the_list(world, create_code, sim, run_jobs):
    """When a rep leaves the company (delete_user), is the rep taken off every code's list?"""
    code = create_code(members=[{"userid": "zhangwei"}, {"userid": "lina"}])
    sim.control.resign_user("zhangwei")
    settle(sim, run_jobs)
    assert _users(sim, code) == ["lina"]


def test_nobody_available_keeps_the_last_list(world, create_code, sim, db):
    """With the pool off schedule and no backup, does WeCom keep its last list (it cannot be empty)?"""
    code = create_code(schedule=WORKDAYS, members=[{"userid": "zhangwei"}])
    wecom_sync.sync_code(code["id"], MONDAY_10)
    assert wecom_sync.sync_code(code["id"], SATURDAY_10) is False
    assert _users(sim, code) == ["zhangwei"]


def test_periodic_tick_is_scheduled_and_archives_expired_codes(world, create_code, app, run_jobs, sim, db):
    """Is the tick a periodic job every minute, and does it archive an expired code and delete its way?"""
    assert any(d.name == "contact_codes.tick" and d.every == 60 for d in definitions())
    soon = datetime.now(UTC) + timedelta(hours=1)
    code = create_code(expires_at=soon.isoformat())
    assert "contact_codes.tick" in tick(app)
    run_jobs()
    assert db.session.get(ContactCode, code["id"]).status == CodeStatus.active
    result = contact_codes.tick(soon + timedelta(seconds=1))
    assert result["archived"] == 1
    db.session.expire_all()
    assert db.session.get(ContactCode, code["id"]).status == CodeStatus.archived
    assert sim.control.state("counts")["counts"]["contact_ways"] == 0
