"""wecom mode: keep the WeCom contact way's user list equal to "reps available now".

The list is recomputed at schedule boundaries and midnight cap resets (the periodic tick), when
an add fills a cap, when a rep resigns and when an admin changes the code. WeCom is called only
when the list actually changes. WeCom needs at least one user on a way: when nobody (pool or
backup) is available, the last list stays and the audit says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import CodeMode, CodeStatus, ContactCode, ContactCodeAdd, ContactCodeMember, StaffStatus, utcnow
from app.services import audit
from wecom.client import contact_client

from . import cache, schedule
from .aftercommit import after_commit, enqueue_after_commit
from .availability import cap_exclusion, exclusion

log = logging.getLogger(__name__)


@dataclass
class Desired:
    users: list[str]
    backup: bool = False
    excluded: dict[str, str] = field(default_factory=dict)


def add_counts(code_id: int, day) -> tuple[dict[int, int], dict[int, int]]:
    """Adds through the code per rep: ({staff_id: today}, {staff_id: all time})."""
    stmt = select(ContactCodeAdd.staff_id, func.count()).where(ContactCodeAdd.code_id == code_id)
    today = dict(db.session.execute(stmt.where(ContactCodeAdd.day == day).group_by(ContactCodeAdd.staff_id)).all())
    total = dict(db.session.execute(stmt.group_by(ContactCodeAdd.staff_id)).all())
    return today, total


def desired(code: ContactCode, now: datetime) -> Desired:
    """The reps WeCom should offer now: the available pool, else the available backups."""
    today, total = add_counts(code.id, schedule.local_day(code.schedule, now)) if code.id else ({}, {})
    result = Desired(users=[])
    pool, backups = [], []
    for member in code.members:
        why = exclusion(code, member, now) or cap_exclusion(
            member, today.get(member.staff_id, 0), total.get(member.staff_id, 0)
        )
        if why:
            result.excluded[member.staff.userid] = why
        else:
            (backups if member.backup else pool).append(member.staff.userid)
    result.users, result.backup = (pool, False) if pool else (backups, bool(backups))
    return result


def initial_users(code: ContactCode, now: datetime) -> list[str]:
    """The list a new way starts with. WeCom refuses an empty list, so when nobody is available
    yet (say, created at night) it starts with every rep not resigned or paused, and the next
    tick narrows it."""
    users = desired(code, now).users
    return users or [m.staff.userid for m in code.members if m.staff.status != StaffStatus.resigned and not m.paused]


def apply(code: ContactCode, now: datetime, reason: str, force: bool = False) -> bool:
    """Set the way's list to the desired one if it differs (or ``force``: name or skip_verify
    changed); audits the change. The caller commits. True when WeCom was called."""
    if code.mode != CodeMode.wecom or code.status == CodeStatus.archived or not code.config_id:
        return False
    want = desired(code, now)
    users = want.users or list(code.wecom_users)
    if not want.users:
        log.warning("contact code %s: nobody available; WeCom keeps %s", code.id, users)
    if users == list(code.wecom_users) and not force:
        return False
    contact_client().external_contact.update_contact_way(
        code.config_id, code.name[:30], skip_verify=code.skip_verify, user=users
    )
    audit.record(
        code.corp_id,
        "system",
        "contact_code.users_changed",
        "contact_code",
        code.id,
        reason=reason,
        data={"before": list(code.wecom_users), "after": users, "backup": want.backup, "excluded": want.excluded},
    )
    code.wecom_users = users
    cache.bump_after_commit(code)
    return True


def sync_code(code_id: int, now: datetime | None = None, reason: str = "schedule") -> bool:
    """Recompute one code's list under a row lock (two syncs never interleave) and commit."""
    code = db.session.scalar(
        select(ContactCode)
        .where(ContactCode.id == code_id)
        .options(selectinload(ContactCode.members).selectinload(ContactCodeMember.staff))
        .with_for_update(of=ContactCode)
        .execution_options(populate_existing=True)
    )
    if code is None:
        return False
    changed = apply(code, now or utcnow(), reason)
    db.session.commit()
    return changed


def sync_code_job(code_id: int, reason: str = "cap reached") -> bool:
    """RQ entry point: an add filled a cap, or a rep left."""
    return sync_code(code_id, reason=reason)


def sync_all(now: datetime | None = None) -> dict[str, int]:
    """Recompute every live wecom-mode code (the periodic tick). One code's WeCom error is
    logged and does not stop the others; the next tick tries it again."""
    now = now or utcnow()
    ids = db.session.scalars(
        select(ContactCode.id).where(
            ContactCode.mode == CodeMode.wecom,
            ContactCode.status.in_([CodeStatus.active, CodeStatus.paused]),
            ContactCode.config_id.is_not(None),
        )
    ).all()
    db.session.commit()
    result = {"codes": len(ids), "changed": 0, "failed": 0}
    for code_id in ids:
        try:
            result["changed"] += sync_code(code_id, now)
        except Exception:  # one code's trouble must not stop the others; the next tick retries
            db.session.rollback()
            result["failed"] += 1
            log.exception("contact code %s: user list sync failed", code_id)
    return result


def on_rep_departed(corp_id: int, staff_id: int) -> None:
    """A rep left (delete_user, or found resigned by the hand-over reconciliation): take them
    out of every code at once (wecom lists are recomputed, landing snapshots dropped).
    Registered on ``handover.on_rep_departed`` (app/services/hooks.py)."""
    rows = db.session.execute(
        select(ContactCode.id, ContactCode.state, ContactCode.mode)
        .join(ContactCodeMember, ContactCodeMember.code_id == ContactCode.id)
        .where(
            ContactCode.corp_id == corp_id,
            ContactCode.status != CodeStatus.archived,
            ContactCodeMember.staff_id == staff_id,
        )
    ).all()
    for code_id, state, mode in rows:
        after_commit(cache.bump, corp_id, state)
        if mode == CodeMode.wecom:
            enqueue_after_commit(sync_code_job, code_id, "rep resigned", queue="high")
