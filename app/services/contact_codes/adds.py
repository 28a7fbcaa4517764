"""What happens when a customer adds a rep through a code (add_external_contact with its State).

The handler runs in the event's transaction after the mirror handler stored the customer and
the relation. It tags the relation (one idempotent ``mark_tag``; on any failure a job on the
default queue takes over), records the add once (unique on code, rep, customer and time),
attributes the channel (first touch kept, last touch updated), records WeCom's pick for the
audit, puts the welcome in the outbox, and — after the commit — has the welcome sent (high
queue, ahead of waiting jobs) and, when the add filled a cap, the WeCom user list updated at once.
The code itself is read from the per-process snapshot (``cache``), not the database.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from sqlalchemy import case, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from wechatpy.exceptions import WeChatClientException

from app.dbutil import insert_ignoring_conflict
from app.extensions import db
from app.models import (
    AssignmentKind,
    CodeMode,
    ContactCode,
    ContactCodeAdd,
    ContactCodeAssignment,
    Customer,
    FollowRelation,
    IdentityType,
    Staff,
    Tag,
    follow_tag,
    utcnow,
)
from app.services import customers, oneid
from app.services import staff as staff_service
from app.services.contacts import from_timestamp
from jobs.queues import queues
from wecom.client import contact_client
from wecom.errors import is_transient

from . import cache, schedule, tags, wecom_sync, welcome
from .aftercommit import enqueue_after_commit
from .availability import cap_exclusion

log = logging.getLogger(__name__)

UNKNOWN_TAG = 40068
TAG_BACKOFF_SECONDS = (5, 30, 120)


def on_contact_added(corp_id: int, fields: dict) -> None:
    """HANDLERS entry for add_external_contact (after the mirror handler)."""
    state = fields.get("State")
    if not state:
        return
    code = cache.by_state(corp_id, state)
    if code is None:
        return  # another feature's state (a card, a hand-made way)
    external_userid, userid = fields["ExternalUserID"], fields["UserID"]
    customer_id = oneid.customer_id_for(corp_id, IdentityType.external_userid, external_userid)
    if customer_id is None:
        log.info("contact code %s: %s is gone from WeCom; nothing to attribute", code.id, external_userid)
        return
    customer = db.session.get(Customer, customer_id)
    if customer.merged_into_id is not None:
        customer = db.session.get(Customer, customers.resolve_id(corp_id, customer.id))
    member = next((m for m in code.members if m.staff.userid == userid), None)
    rep = member.staff if member else staff_service.ensure(corp_id, userid)
    staff_id = member.staff_id if member else rep.id
    # Tag first (one idempotent call), so the add row is written once with its outcome.
    tagged = _mark_tags(code, userid, external_userid) if code.tag_ids else None
    added_at = from_timestamp(fields.get("CreateTime"))
    day = schedule.local_day(code.schedule, utcnow())
    add_id = insert_ignoring_conflict(
        ContactCodeAdd,
        {
            "corp_id": corp_id,
            "code_id": code.id,
            "staff_id": staff_id,
            "customer_id": customer.id,
            "external_userid": external_userid,
            "added_at": added_at,
            "day": day,
            "tag_status": {None: "none", True: "applied", False: "pending"}[tagged],
            "created_at": utcnow(),
        },
        ["code_id", "staff_id", "external_userid", "added_at"],
    )
    if add_id is None:
        return  # this add was handled already
    if customer.first_channel is None:
        customer.first_channel = code.channel
    customer.last_channel = code.channel
    if fields.get("WelcomeCode") and code.welcome:
        welcome.queue(code, add_id, staff_id, rep, customer, fields["WelcomeCode"], added_at)
    if code.mode == CodeMode.wecom:
        _record_wecom_pick(code, member, staff_id, day)
    if tagged:
        _mirror_tags(corp_id, staff_id, customer.id, list(code.tag_ids))
    elif tagged is False:
        enqueue_after_commit(apply_tags_job, add_id, 0, queue="default")


def _mark_tags(code: cache.CodeView, userid: str, external_userid: str) -> bool:
    """mark_tag right away; False hands tagging to the job (with its retries) after the commit,
    so neither the add nor its welcome ever waits on a tagging problem."""
    try:
        contact_client().external_contact.mark_tag(userid, external_userid, add_tag=list(code.tag_ids))
    except (WeChatClientException, requests.RequestException):
        log.info("contact code %s: tagging %s deferred to a job", code.id, external_userid, exc_info=True)
        return False
    return True


def _record_wecom_pick(code: cache.CodeView, member: cache.MemberView | None, staff_id: int, day) -> None:
    reason: dict = {"listed": list(code.wecom_users)}
    if member is None:
        reason["note"] = "not a member of the code (the way was changed in the WeCom console?)"
    else:
        reason.update(weight=member.weight, daily_cap=member.daily_cap, total_cap=member.total_cap)
    db.session.add(
        ContactCodeAssignment(
            corp_id=code.corp_id,
            code_id=code.id,
            staff_id=staff_id,
            kind=AssignmentKind.wecom,
            backup=bool(member and member.backup),
            reason=reason,
            day=day,
            created_at=utcnow(),
        )
    )
    if member is None or (member.daily_cap is None and member.total_cap is None):
        return
    today, total = db.session.execute(
        select(func.count(case((ContactCodeAdd.day == day, 1))), func.count()).where(
            ContactCodeAdd.code_id == code.id, ContactCodeAdd.staff_id == staff_id
        )
    ).one()
    reason.update(adds_today=today, adds_total=total)
    if cap_exclusion(member, today, total):
        # Full now: take them off WeCom's list at once, not at the next tick.
        enqueue_after_commit(wecom_sync.sync_code_job, code.id, "cap reached", queue="high")


def _mirror_tags(corp_id: int, staff_id: int, customer_id: int, wecom_tag_ids: list[str]) -> None:
    """mark_tag fires no callback: put the tags on our copy of the relation ourselves (one
    statement; tags already there are skipped)."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    pairs = (
        select(FollowRelation.id, Tag.id)
        .select_from(FollowRelation)
        .join(Tag, true())  # every tag of the code on this one relation
        .where(
            FollowRelation.corp_id == corp_id,
            FollowRelation.staff_id == staff_id,
            FollowRelation.customer_id == customer_id,
            Tag.corp_id == corp_id,
            Tag.wecom_tag_id.in_(wecom_tag_ids),
        )
    )
    db.session.execute(dialect.insert(follow_tag).from_select(["follow_id", "tag_id"], pairs).on_conflict_do_nothing())


def apply_tags(add_id: int, attempt: int = 0) -> str:
    """mark_tag the code's tags on the new relation, and mirror them; a tag deleted in WeCom
    since the code was saved is created again once."""
    add = db.session.get(ContactCodeAdd, add_id)
    if add is None or add.tag_status != "pending":
        return "skipped"
    code = db.session.get(ContactCode, add.code_id)
    userid = db.session.get(Staff, add.staff_id).userid
    try:
        try:
            contact_client().external_contact.mark_tag(userid, add.external_userid, add_tag=list(code.tag_ids))
        except WeChatClientException as exc:
            if exc.errcode != UNKNOWN_TAG:
                raise
            code.tag_ids = tags.ensure(code.corp_id, code.tags, refresh=True)
            cache.bump_after_commit(code)
            contact_client().external_contact.mark_tag(userid, add.external_userid, add_tag=list(code.tag_ids))
    except (WeChatClientException, requests.RequestException) as exc:
        if is_transient(exc) and attempt < len(TAG_BACKOFF_SECONDS):
            db.session.rollback()
            queues()["default"].enqueue_in(
                timedelta(seconds=TAG_BACKOFF_SECONDS[attempt]), apply_tags_job, add_id, attempt + 1
            )
            return "retrying"
        db.session.rollback()
        add = db.session.get(ContactCodeAdd, add_id)
        add.tag_status, add.tag_error = "failed", str(exc)[:500]
        db.session.commit()
        return "failed"
    _mirror_tags(code.corp_id, add.staff_id, add.customer_id, list(code.tag_ids))
    add.tag_status = "applied"
    db.session.commit()
    return "applied"


def apply_tags_job(add_id: int, attempt: int = 0) -> str:
    """RQ entry point (default queue)."""
    return apply_tags(add_id, attempt)
