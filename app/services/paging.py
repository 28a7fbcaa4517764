"""One way to paginate a query."""

from __future__ import annotations

from sqlalchemy import Select, func, select

from app.extensions import db
from app.schemas.common import Page


def paginate(stmt: Select, page: int, per_page: int, *order_by) -> Page:
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = db.session.scalars(stmt.order_by(*order_by).limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items=list(items), total=total, page=page, per_page=per_page)
