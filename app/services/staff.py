"""Reading staff."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from app.models import Staff, StaffStatus
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
