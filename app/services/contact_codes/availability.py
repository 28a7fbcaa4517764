"""Who in a code's pool may take a customer now, and if not, why (the reasons go to the audit)."""

from __future__ import annotations

from datetime import datetime

from app.models import CodeStatus, ContactCode, ContactCodeMember, StaffStatus

from . import schedule


def exclusion(code: ContactCode, member: ContactCodeMember, now: datetime) -> str | None:
    """Why ``member`` cannot take customers now, caps aside; None when they can.

    Backups ignore the schedule and a paused code: they are the cover for exactly those times.
    """
    if member.staff.status == StaffStatus.resigned:
        return "resigned"
    if member.paused:
        return "rep paused"
    if member.backup:
        return None
    if code.status == CodeStatus.paused:
        return "code paused"
    if not schedule.is_open(code.schedule, now):
        return "outside schedule"
    return None


def cap_exclusion(member: ContactCodeMember, today: int, total: int) -> str | None:
    """Why ``member`` is full: their daily or total cap is reached."""
    if member.daily_cap is not None and today >= member.daily_cap:
        return f"daily cap {member.daily_cap} reached"
    if member.total_cap is not None and total >= member.total_cap:
        return f"total cap {member.total_cap} reached"
    return None
