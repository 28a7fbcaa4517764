"""The audit log: writing it (callers add the entry inside their own transaction) and
searching it for the console."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from app.errors import ApiError
from app.extensions import db
from app.models import AuditLog
from app.schemas.common import Page
from app.services.paging import paginate

if TYPE_CHECKING:  # auth imports this module
    from app.services.auth import Principal


def record(
    corp_id: int,
    actor: str,
    action: str,
    target_type: str,
    target_id,
    *,
    reason: str | None = None,
    data: dict | None = None,
) -> AuditLog:
    entry = AuditLog(
        corp_id=corp_id,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        reason=reason,
        data=data or {},
    )
    db.session.add(entry)
    return entry


def search(
    principal: Principal,
    *,
    page: int,
    per_page: int,
    actor: str | None = None,
    action_prefix: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Page:
    """The corp's audit log, newest first (admins only): by exact actor, action prefix
    (``customer.`` matches ``customer.merge``), target and an inclusive range of UTC days."""
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "only an admin may read the audit log")
    if date_from and date_to and date_from > date_to:
        raise ApiError(422, "validation_error", "the range is reversed", {"date_to": ["must not be before the start"]})
    stmt = select(AuditLog).where(AuditLog.corp_id == principal.corp_id)
    if actor:
        stmt = stmt.where(AuditLog.actor == actor)
    if action_prefix:
        # Matched literally: LIKE's wildcards in the filter are escaped.
        escaped = action_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(AuditLog.action.like(f"{escaped}%", escape="\\"))
    if target_type:
        stmt = stmt.where(AuditLog.target_type == target_type)
    if target_id:
        stmt = stmt.where(AuditLog.target_id == target_id)
    if date_from:
        stmt = stmt.where(AuditLog.created_at >= datetime.combine(date_from, time.min, UTC))
    if date_to:
        stmt = stmt.where(AuditLog.created_at < datetime.combine(date_to + timedelta(days=1), time.min, UTC))
    return paginate(stmt, page, per_page, AuditLog.created_at.desc(), AuditLog.id.desc())
