"""The console dashboard's figures over a range of local days: customers added per day by
channel, customers lost (they deleted the rep), alerts delivered, and hand-overs under way.

Each series is one grouped query (the day is computed in SQL, in the corp's timezone), scoped
to the corp; a rep's dashboard counts only their own relations and the alerts sent to them, and
the hand-overs the hand-over service lets them see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, select

from app.errors import ApiError
from app.extensions import db
from app.models import (
    AlertDelivery,
    ContactCode,
    DeletedBy,
    DeliveryState,
    FollowRelation,
    HandoverStatus,
    utcnow,
)
from app.services import handover
from app.services.auth import Principal
from app.services.handover.transitions import ADD_WAY_ASSIGNED

DEFAULT_DAYS = 14
MAX_DAYS = 366
# Channels beyond the busiest few are summed as "other", so the chart stays readable.
MAX_CHANNELS = 6
TIMEZONE = "Asia/Shanghai"
CARD_CHANNEL = "business card"
NO_CHANNEL = "no channel"
OTHER_CHANNEL = "other"


@dataclass
class Dashboard:
    """The figures of one dashboard; every per-day list is aligned with ``days``."""

    date_from: date
    date_to: date
    timezone: str
    days: list[date]
    adds_by_channel: dict[str, list[int]] = field(default_factory=dict)
    lost: list[int] = field(default_factory=list)
    alerts_sent: list[int] = field(default_factory=list)
    handovers_running: int = 0
    handovers_pending: int = 0

    @property
    def adds(self) -> list[int]:
        """Adds per day over every channel."""
        return [sum(column) for column in zip(*self.adds_by_channel.values(), strict=True)] or [0] * len(self.days)

    @property
    def totals(self) -> dict[str, int]:
        return {"adds": sum(self.adds), "lost": sum(self.lost), "alerts_sent": sum(self.alerts_sent)}


def day_range(date_from: date | None, date_to: date | None, tz: str = TIMEZONE) -> tuple[date, date]:
    """[from, to] with defaults (the last ``DEFAULT_DAYS`` local days); 422 when reversed or too long."""
    date_to = date_to or utcnow().astimezone(ZoneInfo(tz)).date()
    date_from = date_from or date_to - timedelta(days=DEFAULT_DAYS - 1)
    if date_from > date_to:
        raise _invalid("date_from", "must not be after the end")
    if (date_to - date_from).days >= MAX_DAYS:
        raise _invalid("date_from", f"at most {MAX_DAYS} days at a time")
    return date_from, date_to


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", "the request has invalid fields", {name: [message]})


def overview(principal: Principal, date_from: date | None = None, date_to: date | None = None) -> Dashboard:
    """The dashboard of ``principal`` over [from, to] (local days in the corp's timezone)."""
    date_from, date_to = day_range(date_from, date_to)
    days = [date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1)]
    zone = ZoneInfo(TIMEZONE)
    # Timestamps are compared in UTC; the bounds are the local midnights around the range.
    start = datetime.combine(date_from, time(), zone).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time(), zone).astimezone(UTC)
    board = Dashboard(date_from, date_to, TIMEZONE, days)
    board.adds_by_channel = _adds_by_channel(principal, days, start, end)
    board.lost = _per_day(_lost(principal, start, end), days)
    board.alerts_sent = _per_day(_alerts_sent(principal, start, end), days)
    board.handovers_running = handover.search(principal, page=1, per_page=1, status=HandoverStatus.running).total
    board.handovers_pending = handover.search(
        principal, page=1, per_page=1, status=HandoverStatus.pending_approval
    ).total
    return board


def _local_day(column):
    """The local calendar day of a UTC timestamp column, computed by the database."""
    if db.engine.dialect.name == "postgresql":
        return func.date(func.timezone(TIMEZONE, column))
    # SQLite (the local run) stores naive UTC text; shift by the zone's current offset
    # (Asia/Shanghai has no daylight saving, so this is exact for the default zone).
    offset = int(utcnow().astimezone(ZoneInfo(TIMEZONE)).utcoffset().total_seconds() // 60)
    return func.date(column, f"{offset:+d} minutes")


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _per_day(rows, days: list[date]) -> list[int]:
    counts = {_as_date(day): n for day, n in rows}
    return [counts.get(day, 0) for day in days]


def _relations(principal: Principal):
    condition = FollowRelation.corp_id == principal.corp_id
    if not principal.is_admin:
        condition = and_(condition, FollowRelation.staff_id == (principal.staff_id or -1))
    return condition


def _adds_by_channel(principal: Principal, days: list[date], start: datetime, end: datetime) -> dict[str, list[int]]:
    day = _local_day(FollowRelation.added_at)
    channel = case(
        (ContactCode.channel.is_not(None), ContactCode.channel),
        (FollowRelation.state.like("card:%"), literal(CARD_CHANNEL)),
        (FollowRelation.state == "", literal(NO_CHANNEL)),
        else_=literal(OTHER_CHANNEL),
    )
    adds = (
        select(day.label("day"), channel.label("channel"))
        .select_from(FollowRelation)
        .outerjoin(
            ContactCode, and_(ContactCode.corp_id == FollowRelation.corp_id, ContactCode.state == FollowRelation.state)
        )
        .where(
            _relations(principal),
            FollowRelation.added_at >= start,
            FollowRelation.added_at < end,
            # A relation a hand-over made is a customer moved, not a customer won.
            FollowRelation.add_way != ADD_WAY_ASSIGNED,
        )
        .subquery()
    )
    rows = _grouped(adds, adds.c.channel)
    by_channel: dict[str, dict[date, int]] = {}
    for row_day, name, n in rows:
        by_channel.setdefault(name, {})[_as_date(row_day)] = n
    ranked = sorted(by_channel, key=lambda name: (-sum(by_channel[name].values()), name))
    shown, folded = ranked[:MAX_CHANNELS], ranked[MAX_CHANNELS:]
    series = {name: [by_channel[name].get(d, 0) for d in days] for name in shown}
    if folded:
        rest = [sum(by_channel[name].get(d, 0) for name in folded) for d in days]
        series[OTHER_CHANNEL] = [a + b for a, b in zip(series.get(OTHER_CHANNEL, [0] * len(days)), rest, strict=True)]
    return series


def _grouped(subquery, *columns):
    # Grouped outside the subquery: the day expression carries bound parameters (the zone),
    # which PostgreSQL would not match between SELECT and GROUP BY.
    return db.session.execute(select(subquery.c.day, *columns, func.count()).group_by(subquery.c.day, *columns)).all()


def _lost(principal: Principal, start: datetime, end: datetime):
    lost = (
        select(_local_day(FollowRelation.deleted_at).label("day"))
        .where(
            _relations(principal),
            FollowRelation.deleted_by == DeletedBy.customer,
            FollowRelation.deleted_at >= start,
            FollowRelation.deleted_at < end,
        )
        .subquery()
    )
    return _grouped(lost)


def _alerts_sent(principal: Principal, start: datetime, end: datetime):
    condition = and_(
        AlertDelivery.corp_id == principal.corp_id,
        AlertDelivery.state == DeliveryState.sent,
        AlertDelivery.sent_at >= start,
        AlertDelivery.sent_at < end,
    )
    if not principal.is_admin:
        condition = and_(condition, AlertDelivery.staff_id == (principal.staff_id or -1))
    return _grouped(select(_local_day(AlertDelivery.sent_at).label("day")).where(condition).subquery())
