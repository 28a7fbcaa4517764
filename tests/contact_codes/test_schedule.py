"""Schedules: weekday slots, date exceptions, timezones."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from app.services.contact_codes.schedule import is_open, local_day

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE = {
    "timezone": "Asia/Shanghai",
    "slots": [
        {"weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"},
        {"weekdays": [6], "start": "10:00", "end": "12:00"},
    ],
    "exceptions": [
        {"date": "2026-10-01", "slots": []},
        {"date": "2026-10-11", "slots": [{"start": "09:00", "end": "18:00"}]},
    ],
}


def test_weekday_slots_and_exceptions():
    """Are slot edges (start in, end out), weekends and exception dates honoured?"""
    at = lambda y, m, d, hh, mm=0: datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)  # noqa: E731
    assert is_open(OFFICE, at(2026, 9, 30, 9)) and not is_open(OFFICE, at(2026, 9, 30, 8, 59))
    assert is_open(OFFICE, at(2026, 9, 30, 17, 59)) and not is_open(OFFICE, at(2026, 9, 30, 18))
    assert is_open(OFFICE, at(2026, 10, 3, 11)) and not is_open(OFFICE, at(2026, 10, 3, 13))  # Saturday
    assert not is_open(OFFICE, at(2026, 10, 4, 11))  # Sunday
    assert not is_open(OFFICE, at(2026, 10, 1, 11))  # National Day, a Thursday
    assert is_open(OFFICE, at(2026, 10, 11, 11))  # a working Sunday


def test_timezone_decides_the_day_and_the_hour():
    """Is 01:30 UTC on a Monday read as 09:30 Shanghai (open) and 23:30 Sunday New York (closed)?"""
    now = datetime(2026, 9, 28, 1, 30, tzinfo=UTC)
    assert is_open(OFFICE, now)
    assert not is_open({**OFFICE, "timezone": "America/New_York"}, now)
    assert local_day(OFFICE, datetime(2026, 9, 27, 16, 0, tzinfo=UTC)) == date(2026, 9, 28)  # midnight Shanghai


def test_no_schedule_is_always_open_and_midnight_slot_ends_the_day():
    """Is a missing schedule always open, and does a slot to 24:00 cover the last minute of the day?"""
    assert is_open(None, datetime(2026, 1, 1, 3, 0, tzinfo=UTC))
    late = {"slots": [{"weekdays": list(range(1, 8)), "start": "22:00", "end": "24:00"}]}
    assert is_open(late, datetime(2026, 1, 1, 23, 59, tzinfo=SHANGHAI))
    assert not is_open(late, datetime(2026, 1, 2, 0, 0, tzinfo=SHANGHAI))


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
    st.integers(0, 23 * 60),
    st.integers(1, 60),
)
def test_a_daily_slot_contains_exactly_its_minutes(now, start, length):
    """For any instant and any daily slot, is the instant inside exactly when its local minute is?"""
    end = min(start + length, 24 * 60)
    fmt = lambda m: f"{m // 60:02d}:{m % 60:02d}"  # noqa: E731
    schedule = {"slots": [{"weekdays": list(range(1, 8)), "start": fmt(start), "end": fmt(end)}]}
    local = now.astimezone(SHANGHAI)
    minute = local.hour * 60 + local.minute
    assert is_open(schedule, now) == (start <= minute < end)
    assert local_day(schedule, now) == (now + timedelta(hours=8)).date()
