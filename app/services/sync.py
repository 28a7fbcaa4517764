"""Full sync with WeCom: departments, staff, corp tags, every rep's customers — and the
reconciliation of what the callbacks missed (relations added or removed while our callback URL
was down, reps deleted). Idempotent: running it twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sqlalchemy import select

from app.extensions import db
from app.models import (
    DeletedBy,
    FollowRelation,
    FollowStatus,
    Identity,
    IdentityType,
    Staff,
    StaffStatus,
    Tag,
    utcnow,
)
from app.services import contacts
from app.services import staff as staff_service
from wecom.apis import MAX_USERS_PER_BATCH_GET
from wecom.client import contact_client

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class SyncReport:
    departments: int = 0
    staff: int = 0
    resigned: list[str] = field(default_factory=list)
    tags: int = 0
    contacts: int = 0
    relations_closed: int = 0


def run(corp_id: int, progress: Progress | None = None) -> SyncReport:
    progress = progress or (lambda *_: None)
    client = contact_client()
    report = SyncReport()

    departments = client.department.list()
    report.departments = staff_service.upsert_departments(corp_id, departments)
    roots = [d["id"] for d in departments if not d.get("parentid")] or [1]
    users = {u["userid"]: u for root in roots for u in client.user.list(root, fetch_child=True)}
    for user in users.values():
        staff_service.from_wecom_user(corp_id, user)
    report.staff = len(users)
    # Reps missing from WeCom's address book left while the callback was not heard.
    for row in db.session.scalars(select(Staff).where(Staff.corp_id == corp_id, Staff.status == StaffStatus.active)):
        if row.userid not in users:
            staff_service.mark_resigned(corp_id, row.userid, utcnow())
            report.resigned.append(row.userid)
    report.tags = _sync_corp_tags(corp_id, client.external_contact.get_corp_tag_list().get("tag_group") or [])
    db.session.commit()
    progress("staff", report.staff, report.staff)

    follow_users = client.external_contact.get_follow_user_list().get("follow_user") or []
    seen: set[tuple[str, str]] = set()
    for start in range(0, len(follow_users), MAX_USERS_PER_BATCH_GET):
        batch = follow_users[start : start + MAX_USERS_PER_BATCH_GET]
        cursor = ""
        while True:
            page = client.customer_contact.batch_get_by_users(batch, cursor=cursor)
            for item in page.get("external_contact_list") or []:
                info = item["follow_info"]
                contacts.apply(corp_id, item["external_contact"], [info], source="sync")
                seen.add((info["userid"], item["external_contact"]["external_userid"]))
                report.contacts += 1
            db.session.commit()  # each page is durable: a crash resumes with less to do
            cursor = page.get("next_cursor") or ""
            if not cursor:
                break
        progress("customers", min(start + len(batch), len(follow_users)), len(follow_users))

    report.relations_closed = _close_unseen(corp_id, seen)
    db.session.commit()
    log.info("sync done: %s", report)
    return report


def _sync_corp_tags(corp_id: int, groups: list[dict]) -> int:
    rows = {t.wecom_tag_id: t for t in db.session.scalars(select(Tag).where(Tag.corp_id == corp_id))}
    count = 0
    for group in groups:
        for tag in group.get("tag") or []:
            row = rows.get(tag["id"]) or Tag(corp_id=corp_id, wecom_tag_id=tag["id"])
            row.name, row.group_name = tag.get("name") or tag["id"], group.get("group_name") or ""
            db.session.add(row)
            count += 1
    db.session.flush()
    return count


def _close_unseen(corp_id: int, seen: set[tuple[str, str]]) -> int:
    """Relations we hold as live that WeCom no longer lists: the delete callback was missed."""
    rows = db.session.execute(
        select(FollowRelation, Staff.userid, Identity.value)
        .join(Staff, Staff.id == FollowRelation.staff_id)
        .join(
            Identity,
            (Identity.customer_id == FollowRelation.customer_id) & (Identity.type == IdentityType.external_userid),
        )
        .where(
            FollowRelation.corp_id == corp_id, FollowRelation.status.in_([FollowStatus.active, FollowStatus.pending])
        )
    ).all()
    live: dict[int, FollowRelation] = {}
    for relation, userid, external_userid in rows:
        # A customer may hold several external_userids (OneID); any one seen keeps the relation.
        if (userid, external_userid) in seen:
            live[relation.id] = None
        elif relation.id not in live:
            live[relation.id] = relation
    closed = 0
    for relation in live.values():
        if relation is not None:
            relation.status, relation.deleted_at, relation.deleted_by = FollowStatus.deleted, utcnow(), DeletedBy.sync
            closed += 1
    return closed


def sync_job(corp_id: int) -> dict:
    """RQ entry point (nightly, and "sync now" from the console)."""
    return asdict(run(corp_id))


def nightly_sync_job() -> dict:
    """Periodic entry point: sync the env corp."""
    from app.services import corps

    return sync_job(corps.env_corp_id())
