"""Staff (reps) and departments: reading them, and keeping them equal to WeCom."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select

from app.errors import NotFound
from app.extensions import db
from app.models import Department, FollowRelation, FollowStatus, Staff, StaffStatus
from app.schemas.common import Page
from app.services.auth import Principal
from app.services.paging import paginate


def search(
    principal: Principal,
    *,
    page: int,
    per_page: int,
    status: StaffStatus | None = None,
    department: int | None = None,
    q: str | None = None,
) -> Page:
    stmt = select(Staff).where(Staff.corp_id == principal.corp_id)
    if status:
        stmt = stmt.where(Staff.status == status)
    if department is not None:
        stmt = stmt.where(Staff.department_wecom_id == department)
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(or_(func.lower(Staff.name).like(like), func.lower(Staff.userid).like(like)))
    return paginate(stmt, page, per_page, Staff.id)


def get(principal: Principal, staff_id: int) -> Staff:
    """One staff member of the principal's corp; 404 otherwise."""
    row = db.session.get(Staff, staff_id)
    if row is None or row.corp_id != principal.corp_id:
        raise NotFound("staff member")
    return row


def customer_counts(corp_id: int, staff_ids: list[int]) -> dict[int, int]:
    """Customers each rep follows now (active or pending relations), one grouped query."""
    counts = dict.fromkeys(staff_ids, 0)
    if staff_ids:
        rows = db.session.execute(
            select(FollowRelation.staff_id, func.count())
            .where(
                FollowRelation.corp_id == corp_id,
                FollowRelation.staff_id.in_(staff_ids),
                FollowRelation.status.in_([FollowStatus.active, FollowStatus.pending]),
            )
            .group_by(FollowRelation.staff_id)
        )
        counts.update(dict(rows.all()))
    return counts


def department_names(corp_id: int) -> dict[int, str]:
    """WeCom department id → name, for the corp."""
    rows = db.session.execute(select(Department.wecom_id, Department.name).where(Department.corp_id == corp_id))
    return dict(rows.all())


def ensure(corp_id: int, userid: str, **fields) -> Staff:
    """The staff row for ``userid``, created (active) when unknown; ``fields`` update it."""
    row = db.session.scalar(select(Staff).where(Staff.corp_id == corp_id, Staff.userid == userid))
    if row is None:
        row = Staff(corp_id=corp_id, userid=userid, name=fields.pop("name", "") or userid)
        db.session.add(row)
    for key, value in fields.items():
        setattr(row, key, value)
    db.session.flush()
    return row


def ensure_many(corp_id: int, userids: list[str]) -> dict[str, Staff]:
    """:func:`ensure` for many userids at once: one read, the unknown ones created (active)."""
    wanted = set(userids)
    rows = {
        row.userid: row
        for row in db.session.scalars(select(Staff).where(Staff.corp_id == corp_id, Staff.userid.in_(wanted)))
    }
    missing = [Staff(corp_id=corp_id, userid=userid, name=userid) for userid in sorted(wanted - rows.keys())]
    if missing:
        db.session.add_all(missing)
        db.session.flush()
        rows.update((row.userid, row) for row in missing)
    return rows


def from_wecom_user(corp_id: int, user: dict) -> Staff:
    """Upsert from a WeCom ``user/get`` or ``user/list`` entry."""
    departments = user.get("department") or []
    main = user.get("main_department") or (departments[0] if departments else None)
    return ensure(corp_id, user["userid"], name=user.get("name") or user["userid"], department_wecom_id=main)


def mark_resigned(corp_id: int, userid: str, at: datetime) -> Staff:
    row = ensure(corp_id, userid)
    if row.status != StaffStatus.resigned:
        row.status = StaffStatus.resigned
        row.resigned_at = at
    return row


def rename(corp_id: int, old_userid: str, new_userid: str) -> None:
    """WeCom lets an admin change a userid once (update_user with NewUserID)."""
    row = db.session.scalar(select(Staff).where(Staff.corp_id == corp_id, Staff.userid == old_userid))
    if row is not None and not db.session.scalar(
        select(Staff.id).where(Staff.corp_id == corp_id, Staff.userid == new_userid)
    ):
        row.userid = new_userid
        db.session.flush()


def upsert_departments(corp_id: int, departments: list[dict]) -> int:
    existing = {d.wecom_id: d for d in db.session.scalars(select(Department).where(Department.corp_id == corp_id))}
    for dept in departments:
        row = existing.get(dept["id"]) or Department(corp_id=corp_id, wecom_id=dept["id"])
        row.name = dept.get("name", "")
        row.parent_wecom_id = dept.get("parentid", 0)
        db.session.add(row)
    db.session.flush()
    return len(departments)
