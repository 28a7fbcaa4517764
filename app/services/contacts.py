"""Keeping customers and follow relations equal to WeCom.

WeCom is the source of truth for who follows whom: callbacks tell us *that* something changed,
and we read the current state (``externalcontact/get``) rather than trusting the event alone.
That makes every handler idempotent and safe under WeCom's retries and out-of-order delivery.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import (
    Customer,
    DeletedBy,
    FollowRelation,
    FollowStatus,
    IdentityType,
    Staff,
    Tag,
    utcnow,
)
from app.services import oneid
from app.services import staff as staff_service
from wecom.client import contact_client

log = logging.getLogger(__name__)

# externalcontact/get answers these when the customer is no longer anyone's contact.
GONE_ERRCODES = frozenset({84061, 40096})
CORP_TAG = 1


def from_timestamp(value) -> datetime:
    return datetime.fromtimestamp(int(value), UTC) if value else utcnow()


def refresh(corp_id: int, external_userid: str, source: str) -> Customer | None:
    """Read a contact from WeCom and mirror it; None when WeCom no longer knows it."""
    try:
        data = contact_client().external_contact.get(external_userid)
    except WeChatClientException as exc:
        if exc.errcode in GONE_ERRCODES:
            log.info("contact %s is gone from WeCom (%s)", external_userid, exc.errcode)
            return None
        raise
    return apply(corp_id, data["external_contact"], data.get("follow_user") or [], source)


def apply(corp_id: int, contact: dict, follow_infos: list[dict], source: str) -> Customer:
    """Mirror one contact and the given follow relations (WeCom's current view of them)."""
    identities = [(IdentityType.external_userid, contact["external_userid"])]
    if contact.get("unionid"):
        identities.append((IdentityType.unionid, contact["unionid"]))
    profile = _profile(contact)
    customer = oneid.resolve_or_create(corp_id, identities, source, **profile)
    for key, value in profile.items():
        if value not in (None, ""):
            setattr(customer, key, value)
    for info in follow_infos:
        _apply_follow(corp_id, customer, info)
    db.session.flush()
    return customer


def _profile(contact: dict) -> dict:
    return {
        "name": contact.get("name") or "",
        "avatar": contact.get("avatar") or "",
        "gender": int(contact.get("gender") or 0),
        "corp_name": contact.get("corp_name") or "",
    }


def _apply_follow(corp_id: int, customer: Customer, info: dict) -> FollowRelation:
    rep = staff_service.ensure(corp_id, info["userid"])
    relation = db.session.scalar(
        select(FollowRelation).where(
            FollowRelation.corp_id == corp_id,
            FollowRelation.staff_id == rep.id,
            FollowRelation.customer_id == customer.id,
        )
    )
    if relation is None:
        relation = FollowRelation(corp_id=corp_id, staff_id=rep.id, customer_id=customer.id)
        db.session.add(relation)
    relation.status = FollowStatus.active
    relation.deleted_at = relation.deleted_by = None
    relation.remark = info.get("remark") or ""
    relation.description = info.get("description") or ""
    relation.add_way = int(info.get("add_way") or 0)
    relation.state = info.get("state") or relation.state or ""
    relation.added_at = from_timestamp(info.get("createtime"))
    relation.tags = _corp_tags(corp_id, info.get("tags") or [])
    return relation


def _corp_tags(corp_id: int, tags: list[dict]) -> list[Tag]:
    wanted = {t["tag_id"]: t for t in tags if t.get("type", CORP_TAG) == CORP_TAG and t.get("tag_id")}
    if not wanted:
        return []
    rows = {
        t.wecom_tag_id: t
        for t in db.session.scalars(select(Tag).where(Tag.corp_id == corp_id, Tag.wecom_tag_id.in_(wanted)))
    }
    for tag_id, tag in wanted.items():
        row = rows.get(tag_id)
        if row is None:
            row = rows[tag_id] = Tag(corp_id=corp_id, wecom_tag_id=tag_id)
            db.session.add(row)
        row.name = tag.get("tag_name") or row.name or tag_id
        row.group_name = tag.get("group_name") or row.group_name or ""
    db.session.flush()
    return [rows[tag_id] for tag_id in wanted]


def set_pending(corp_id: int, userid: str, external_userid: str) -> None:
    """add_half_external_contact: the customer added a rep who has not accepted yet; the
    full add_external_contact (or the next sync) makes the relation active."""
    relation = find_relation(corp_id, userid, external_userid)
    if relation is not None and relation.status == FollowStatus.active:
        relation.status = FollowStatus.pending


def find_relation(corp_id: int, userid: str, external_userid: str) -> FollowRelation | None:
    customer_id = oneid.customer_id_for(corp_id, IdentityType.external_userid, external_userid)
    if customer_id is None:
        return None
    return db.session.scalar(
        select(FollowRelation)
        .join(Staff, Staff.id == FollowRelation.staff_id)
        .where(FollowRelation.corp_id == corp_id, FollowRelation.customer_id == customer_id, Staff.userid == userid)
    )


def close(corp_id: int, userid: str, external_userid: str, deleted_by: DeletedBy, at: datetime) -> bool:
    """Mark a relation ended (kept, never deleted: the history matters). False if unknown."""
    relation = find_relation(corp_id, userid, external_userid)
    if relation is None:
        log.info("no relation %s ↔ %s to close", userid, external_userid)
        return False
    if relation.status in (FollowStatus.active, FollowStatus.pending):
        relation.status = FollowStatus.transferred if deleted_by == DeletedBy.transfer else FollowStatus.deleted
        relation.deleted_at = at
        relation.deleted_by = deleted_by
    return True
