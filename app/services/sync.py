"""Full sync with WeCom: departments, staff, corp tags, every rep's customers — and the
reconciliation of what the callbacks missed (relations added or removed while our callback URL
was down, reps deleted). Idempotent: running it twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sqlalchemy import select

from app.extensions import db, get_redis
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
            items = [(i["external_contact"], [i["follow_info"]]) for i in page.get("external_contact_list") or []]
            # A page set-based; what OneID leaves to the one-by-one path (merges, a contact
            # followed by several reps on this page…) follows in the same transaction.
            for (contact, infos), customer in zip(items, contacts.apply_many(corp_id, items, "sync"), strict=True):
                if customer is None:
                    contacts.apply(corp_id, contact, infos, source="sync")
                seen.add((infos[0]["userid"], contact["external_userid"]))
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


# "Sync now" progress, readable by any process: a Redis hash per corp with status (queued,
# running, done, failed), phase, done, total, job_id, started_at, finished_at, error and the
# report's figures. The hash also marks a sync in flight, so a second "sync now" is refused.
PROGRESS_KEY = "sync:progress:{corp_id}"
PROGRESS_TTL_SECONDS = 7 * 24 * 3600
# A sync whose worker died stops blocking new ones after this long without progress.
STALE_AFTER_SECONDS = 30 * 60


def enqueue_sync(corp_id: int, actor: str) -> str | None:
    """Queue a full sync on ``low`` unless one is queued or running; answers the job id, or
    None when one is already under way (its progress is in :func:`progress_of`)."""
    from jobs.queues import enqueue

    redis, key = get_redis(), PROGRESS_KEY.format(corp_id=corp_id)
    claim = f"{key}:claim"
    # One claim at a time (the hash is rewritten below), held while a sync is in flight.
    if not redis.set(claim, actor, nx=True, ex=STALE_AFTER_SECONDS):
        return None
    # Written before the job exists, so a worker that starts it at once is not overwritten.
    redis.delete(key)
    redis.hset(key, mapping={"status": "queued", "queued_at": utcnow().isoformat(), "by": actor})
    redis.expire(key, PROGRESS_TTL_SECONDS)
    job = enqueue(sync_job, corp_id, queue="low", job_timeout=STALE_AFTER_SECONDS)
    redis.hset(key, "job_id", job.id)
    log.info("sync queued by %s as job %s", actor, job.id)
    return job.id


def progress_of(corp_id: int) -> dict[str, str]:
    """The last "sync now" (or nightly) sync's progress hash; empty when none is known."""
    raw = get_redis().hgetall(PROGRESS_KEY.format(corp_id=corp_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def _tracked_run(corp_id: int) -> SyncReport:
    redis, key = get_redis(), PROGRESS_KEY.format(corp_id=corp_id)
    claim = f"{key}:claim"

    def progress(phase: str, done: int, total: int) -> None:
        redis.hset(key, mapping={"phase": phase, "done": done, "total": total})
        redis.expire(claim, STALE_AFTER_SECONDS)  # still alive: keep the claim

    redis.hset(key, mapping={"status": "running", "phase": "staff", "started_at": utcnow().isoformat()})
    redis.expire(key, PROGRESS_TTL_SECONDS)
    try:
        report = run(corp_id, progress)
    except Exception as exc:
        db.session.rollback()
        # The class and WeCom's errcode only: a message may carry a URL with the access token.
        error = " ".join(str(p) for p in (type(exc).__name__, getattr(exc, "errcode", None)) if p is not None)
        redis.hset(key, mapping={"status": "failed", "error": error, "finished_at": utcnow().isoformat()})
        raise
    finally:
        redis.delete(claim)
    figures = {k: v for k, v in asdict(report).items() if k != "resigned"}
    redis.hset(
        key,
        mapping={"status": "done", "finished_at": utcnow().isoformat(), "resigned": len(report.resigned), **figures},
    )
    return report


def sync_job(corp_id: int) -> dict:
    """RQ entry point (nightly, and "sync now" from the console); progress in Redis."""
    return asdict(_tracked_run(corp_id))


def nightly_sync_job() -> dict:
    """Periodic entry point: sync the env corp."""
    from app.services import corps

    return sync_job(corps.env_corp_id())
