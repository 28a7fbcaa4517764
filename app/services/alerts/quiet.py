"""Each rep's alert preferences (muted rules, quiet hours, time zone) and quiet hours at work:
an alert raised inside a rep's quiet hours waits (``not_before`` = the end of the quiet
hours), and the periodic release (jobs/schedules.py) hands every waiting alert of the rep to
the senders at the start of working hours, where they go out as one digest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from app.errors import ApiError, NotFound
from app.extensions import db
from app.models import AlertDelivery, AlertRule, DeliveryState, RepAlertPreference, Staff, utcnow
from app.services import audit
from app.services.auth import Principal

DEFAULT_TIMEZONE = "Asia/Shanghai"
QUIET = "quiet_hours"


@dataclass(frozen=True)
class Preference:
    """A rep's preferences (the defaults when they never set any)."""

    staff_id: int
    muted_rule_ids: list[int] = field(default_factory=list)
    quiet_start: int | None = None  # minutes after local midnight
    quiet_end: int | None = None
    timezone: str = DEFAULT_TIMEZONE

    @property
    def quiet_hours(self) -> dict | None:
        if self.quiet_start is None or self.quiet_end is None:
            return None
        return {"start": _hhmm(self.quiet_start), "end": _hhmm(self.quiet_end)}

    def quiet_until(self, now: datetime) -> datetime | None:
        """When the quiet hours ``now`` falls in end (UTC), or None outside quiet hours."""
        start, end = self.quiet_start, self.quiet_end
        if start is None or end is None or start == end:
            return None
        tz = ZoneInfo(self.timezone)
        local = now.astimezone(tz)
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if not inside:
            return None
        ends = datetime.combine(local.date(), time(end // 60, end % 60), tzinfo=tz)
        if ends <= local:
            ends = datetime.combine(local.date() + timedelta(days=1), time(end // 60, end % 60), tzinfo=tz)
        return ends.astimezone(now.tzinfo)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _from_row(row: RepAlertPreference) -> Preference:
    return Preference(row.staff_id, list(row.muted_rule_ids or []), row.quiet_start, row.quiet_end, row.timezone)


def for_staff(corp_id: int, staff_ids: Iterable[int]) -> dict[int, Preference]:
    """{staff id: preference} for every given rep (defaults for those with no row)."""
    ids = {s for s in staff_ids if s is not None}
    if not ids:
        return {}
    rows = db.session.scalars(
        select(RepAlertPreference).where(RepAlertPreference.corp_id == corp_id, RepAlertPreference.staff_id.in_(ids))
    )
    found = {row.staff_id: _from_row(row) for row in rows}
    return {staff_id: found.get(staff_id, Preference(staff_id)) for staff_id in ids}


def _visible_staff(principal: Principal, staff_id: int) -> Staff:
    """A rep may read and change only their own preferences; an admin anyone's in the corp."""
    staff = db.session.get(Staff, staff_id)
    if staff is None or staff.corp_id != principal.corp_id:
        raise NotFound("staff")
    if not principal.is_admin and principal.staff_id != staff_id:
        raise NotFound("staff")
    return staff


def own_staff_id(principal: Principal) -> int:
    """The caller's own staff id ("me"); 404 for a user who is not a rep."""
    if principal.staff_id is None:
        raise NotFound("staff")
    return principal.staff_id


def get(principal: Principal, staff_id: int) -> Preference:
    """A rep's preferences."""
    _visible_staff(principal, staff_id)
    return for_staff(principal.corp_id, [staff_id])[staff_id]


def update_preference(principal: Principal, staff_id: int, changes: dict) -> Preference:
    """Change a rep's preferences: ``muted_rule_ids`` (rules of the corp), ``quiet_hours``
    ({start, end} minutes, or None to clear) and ``timezone``. Audited."""
    _visible_staff(principal, staff_id)
    if "muted_rule_ids" in changes:
        wanted = list(dict.fromkeys(changes["muted_rule_ids"]))
        known = set(
            db.session.scalars(
                select(AlertRule.id).where(AlertRule.corp_id == principal.corp_id, AlertRule.id.in_(wanted))
            )
        )
        unknown = [rule_id for rule_id in wanted if rule_id not in known]
        if unknown:
            raise ApiError(
                422,
                "validation_error",
                "the request has invalid fields",
                {"muted_rule_ids": [f"unknown alert rule: {rule_id}" for rule_id in unknown]},
            )
        changes = {**changes, "muted_rule_ids": wanted}
    row = db.session.scalar(
        select(RepAlertPreference)
        .where(RepAlertPreference.corp_id == principal.corp_id, RepAlertPreference.staff_id == staff_id)
        .with_for_update()
    )
    if row is None:
        row = RepAlertPreference(
            corp_id=principal.corp_id, staff_id=staff_id, muted_rule_ids=[], timezone=DEFAULT_TIMEZONE
        )
        db.session.add(row)
    if "muted_rule_ids" in changes:
        row.muted_rule_ids = changes["muted_rule_ids"]
    if "quiet_hours" in changes:
        quiet = changes["quiet_hours"]
        row.quiet_start, row.quiet_end = (quiet["start"], quiet["end"]) if quiet else (None, None)
    if "timezone" in changes:
        row.timezone = changes["timezone"]
    audit.record(
        principal.corp_id,
        principal.actor,
        "alerts.preferences",
        "staff",
        staff_id,
        data={k: v for k, v in changes.items()},
    )
    db.session.commit()
    return _from_row(row)


# -- the release at the start of working hours ------------------------------------------------
def release_due(now: datetime | None = None) -> int:
    """Hand the alerts whose quiet hours are over to the senders (each rep's arrive as one
    digest). Periodic; returns how many deliveries were released."""
    from app.services.alerts import outbox  # outbox reads preferences from here: import at call time

    now = now or utcnow()
    released = db.session.execute(
        update(AlertDelivery)
        .where(
            AlertDelivery.state == DeliveryState.pending,
            AlertDelivery.reason == QUIET,
            AlertDelivery.not_before <= now,
        )
        .values(not_before=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if released:
        outbox.wake()
    return released


def release_job() -> int:
    """RQ entry point of :func:`release_due` (jobs/schedules.py, every minute)."""
    return release_due()
