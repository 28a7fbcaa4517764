"""When a code's pool works: weekday time slots, date exceptions, in the code's timezone.

A schedule is ``{"timezone": "Asia/Shanghai", "slots": [{"weekdays": [1..7], "start": "09:00",
"end": "18:00"}], "exceptions": [{"date": "2026-10-01", "slots": [{"start", "end"}]}]}``.
Weekdays are ISO (1 = Monday). An exception replaces the weekday slots of its date (no slots:
closed all day). ``None`` means always open. End times are exclusive; "24:00" ends at midnight.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"


def zone(schedule: dict | None) -> ZoneInfo:
    """The schedule's timezone (Asia/Shanghai when none is set)."""
    return ZoneInfo((schedule or {}).get("timezone") or DEFAULT_TIMEZONE)


def local_day(schedule: dict | None, now: datetime) -> date:
    """The calendar day ``now`` falls on in the schedule's timezone: daily caps reset at its midnight."""
    return now.astimezone(zone(schedule)).date()


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _in(slots: list[dict], minute: int) -> bool:
    return any(_minutes(s["start"]) <= minute < _minutes(s["end"]) for s in slots)


def is_open(schedule: dict | None, now: datetime) -> bool:
    """Is ``now`` inside the schedule?"""
    if schedule is None:
        return True
    local = now.astimezone(zone(schedule))
    minute = local.hour * 60 + local.minute
    today = local.date().isoformat()
    for exception in schedule.get("exceptions") or []:
        if exception["date"] == today:
            return _in(exception.get("slots") or [], minute)
    slots = [s for s in schedule.get("slots") or [] if local.isoweekday() in s["weekdays"]]
    return _in(slots, minute)
