"""Writing the audit log. Callers add the entry inside their own transaction."""

from __future__ import annotations

from app.extensions import db
from app.models import AuditLog


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
