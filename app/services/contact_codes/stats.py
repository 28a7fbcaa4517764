"""A code's funnel per day and per rep: landing scans (routed mode), adds, welcomes sent,
customers lost within 7 days of the add, and net (adds − lost). Days are the code's local days;
a lost customer counts against the day they were added. Everything is counted from the rows the
code wrote (assignments, adds, the welcome outbox) and the follow relations, so the figures
never drift from the records.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from sqlalchemy import and_, func, select

from app.errors import ApiError
from app.extensions import db
from app.models import (
    AssignmentKind,
    ContactCode,
    ContactCodeAdd,
    ContactCodeAssignment,
    ContactCodeWelcome,
    DeletedBy,
    FollowRelation,
    FollowStatus,
    Staff,
    WelcomeStatus,
    utcnow,
)
from app.services.auth import Principal

from . import assignment, codes, schedule

LOST_WITHIN = timedelta(days=7)
DEFAULT_DAYS = 30
MAX_DAYS = 366
CSV_COLUMNS = ("day", "userid", "name", "scans", "adds", "welcomes_sent", "lost", "net")


@dataclass
class Counts:
    scans: int = 0
    adds: int = 0
    welcomes_sent: int = 0
    lost: int = 0

    @property
    def net(self) -> int:
        return self.adds - self.lost

    def add(self, other: Counts) -> None:
        """Sum ``other`` into these counts."""
        self.scans += other.scans
        self.adds += other.adds
        self.welcomes_sent += other.welcomes_sent
        self.lost += other.lost

    def as_dict(self) -> dict:
        """The counts and net, as the API shows them."""
        return {**asdict(self), "net": self.net}


def _range(code: ContactCode, date_from: date | None, date_to: date | None) -> tuple[date, date]:
    date_to = date_to or schedule.local_day(code.schedule, utcnow())
    date_from = date_from or date_to - timedelta(days=DEFAULT_DAYS - 1)
    if date_from > date_to:
        raise ApiError(422, "validation_error", "the request has invalid fields", {"from": ["must not be after to"]})
    if (date_to - date_from).days >= MAX_DAYS:
        raise ApiError(
            422, "validation_error", "the request has invalid fields", {"from": [f"at most {MAX_DAYS} days at a time"]}
        )
    return date_from, date_to


def _cells(code_id: int, date_from: date, date_to: date) -> dict[tuple[date, int], Counts]:
    cells: dict[tuple[date, int], Counts] = defaultdict(Counts)
    scans = db.session.execute(
        select(ContactCodeAssignment.day, ContactCodeAssignment.staff_id, func.count())
        .where(
            ContactCodeAssignment.code_id == code_id,
            ContactCodeAssignment.kind == AssignmentKind.routed,
            ContactCodeAssignment.staff_id.is_not(None),
            ContactCodeAssignment.day.between(date_from, date_to),
        )
        .group_by(ContactCodeAssignment.day, ContactCodeAssignment.staff_id)
    )
    for day, staff_id, n in scans:
        cells[(day, staff_id)].scans = n
    adds = db.session.execute(
        select(
            ContactCodeAdd.day,
            ContactCodeAdd.staff_id,
            ContactCodeAdd.added_at,
            FollowRelation.status,
            FollowRelation.deleted_by,
            FollowRelation.deleted_at,
        )
        .outerjoin(
            FollowRelation,
            and_(
                FollowRelation.staff_id == ContactCodeAdd.staff_id,
                FollowRelation.customer_id == ContactCodeAdd.customer_id,
            ),
        )
        .where(ContactCodeAdd.code_id == code_id, ContactCodeAdd.day.between(date_from, date_to))
    )
    for day, staff_id, added_at, status, deleted_by, deleted_at in adds:
        cell = cells[(day, staff_id)]
        cell.adds += 1
        if (
            status == FollowStatus.deleted
            and deleted_by == DeletedBy.customer
            and deleted_at is not None
            and deleted_at - added_at <= LOST_WITHIN
        ):
            cell.lost += 1
    welcomes = db.session.execute(
        select(ContactCodeAdd.day, ContactCodeWelcome.staff_id, func.count())
        .join(ContactCodeAdd, ContactCodeAdd.id == ContactCodeWelcome.add_id)
        .where(
            ContactCodeWelcome.code_id == code_id,
            ContactCodeWelcome.status == WelcomeStatus.sent,
            ContactCodeAdd.day.between(date_from, date_to),
        )
        .group_by(ContactCodeAdd.day, ContactCodeWelcome.staff_id)
    )
    for day, staff_id, n in welcomes:
        cells[(day, staff_id)].welcomes_sent = n
    return cells


def _reps(staff_ids) -> dict[int, tuple[str, str]]:
    if not staff_ids:
        return {}
    rows = db.session.execute(select(Staff.id, Staff.userid, Staff.name).where(Staff.id.in_(list(staff_ids))))
    return {sid: (userid, name) for sid, userid, name in rows}


def report(principal: Principal, code_id: int, date_from: date | None = None, date_to: date | None = None) -> dict:
    """The funnel of a code over [from, to] (default: the last 30 local days)."""
    assignment.flush_decisions()  # routed scans still in the decision log count too
    code = codes.get(principal, code_id)
    date_from, date_to = _range(code, date_from, date_to)
    cells = _cells(code.id, date_from, date_to)
    reps = _reps({staff_id for _, staff_id in cells})

    def rep_entry(staff_id: int, counts: Counts) -> dict:
        userid, name = reps.get(staff_id, ("", ""))
        return {"staff_id": staff_id, "userid": userid, "name": name, **counts.as_dict()}

    by_day: dict[date, list[tuple[int, Counts]]] = defaultdict(list)
    for (cell_day, staff_id), counts in sorted(cells.items()):
        by_day[cell_day].append((staff_id, counts))
    totals, per_rep = Counts(), defaultdict(Counts)
    days = []
    day = date_from
    while day <= date_to:
        day_total = Counts()
        for staff_id, counts in by_day.get(day, []):
            day_total.add(counts)
            per_rep[staff_id].add(counts)
        totals.add(day_total)
        entries = [rep_entry(staff_id, counts) for staff_id, counts in by_day.get(day, [])]
        days.append({"day": day, **day_total.as_dict(), "by_rep": entries})
        day += timedelta(days=1)
    return {
        "code_id": code.id,
        "from": date_from,
        "to": date_to,
        "totals": totals.as_dict(),
        "by_rep": [rep_entry(staff_id, counts) for staff_id, counts in sorted(per_rep.items())],
        "days": days,
    }


def _cell(value) -> str:
    # A leading = + - @ would make a spreadsheet run the cell as a formula.
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def to_csv(data: dict) -> str:
    """One row per day and rep with any activity; UTF-8 with a BOM so spreadsheets read Chinese."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for day in data["days"]:
        for rep in day["by_rep"]:
            writer.writerow(
                [
                    day["day"].isoformat(),
                    _cell(rep["userid"]),
                    _cell(rep["name"]),
                    rep["scans"],
                    rep["adds"],
                    rep["welcomes_sent"],
                    rep["lost"],
                    rep["net"],
                ]
            )
    return "\ufeff" + buffer.getvalue()
