"""Keeping customers and follow relations equal to WeCom.

WeCom is the source of truth for who follows whom: callbacks tell us *that* something changed,
and we read the current state (``externalcontact/get``) rather than trusting the event alone.
That makes every handler idempotent and safe under WeCom's retries and out-of-order delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import select, tuple_
from sqlalchemy.orm import selectinload
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


# Contacts fetched ahead for the handlers of one drained batch: external_userid → WeCom's
# answer, or the exception the call raised (re-raised where the handler would have called).
_prefetched: ContextVar[dict[str, dict | Exception] | None] = ContextVar("prefetched_contacts", default=None)
PREFETCH_THREADS = 8


@contextmanager
def prefetched(external_userids: list[str]) -> Iterator[None]:
    """Fetch these contacts from WeCom concurrently; :func:`refresh` and
    :func:`refresh_prefetched` inside the block use the answers instead of calling. A batch of
    events then waits for WeCom once, not once per event, and its answers are at least as new
    as the events that asked for them."""
    wanted = list(dict.fromkeys(external_userids))
    if not wanted:
        yield
        return
    client = contact_client()

    def fetch(external_userid: str) -> dict | Exception:
        try:
            return client.customer_contact.get_contact(external_userid)
        except Exception as exc:  # noqa: BLE001 - handed to the handler, which decides
            return exc

    answers = dict(zip(wanted, _pool().map(fetch, wanted), strict=True))
    token = _prefetched.set(answers)
    try:
        yield
    finally:
        _prefetched.reset(token)


def _pool() -> ThreadPoolExecutor:
    pool = current_app.extensions.get("contacts_prefetch_pool")
    if pool is None:
        pool = current_app.extensions["contacts_prefetch_pool"] = ThreadPoolExecutor(
            PREFETCH_THREADS, thread_name_prefix="wecom-prefetch"
        )
    return pool


def _get_contact(external_userid: str) -> dict:
    answers = _prefetched.get()
    if answers is not None and external_userid in answers:
        answer = answers[external_userid]
        if isinstance(answer, Exception):
            raise answer
        return answer
    return contact_client().customer_contact.get_contact(external_userid)


def refresh(corp_id: int, external_userid: str, source: str) -> Customer | None:
    """Read a contact from WeCom and mirror it; None when WeCom no longer knows it."""
    try:
        data = _get_contact(external_userid)
    except WeChatClientException as exc:
        if exc.errcode in GONE_ERRCODES:
            log.info("contact %s is gone from WeCom (%s)", external_userid, exc.errcode)
            return None
        raise
    return apply(corp_id, data["external_contact"], data.get("follow_user") or [], source)


def refresh_prefetched(corp_id: int, external_userids: list[str], source: str) -> list[Customer | None]:
    """:func:`refresh` for many contacts at once, set-based (:func:`apply_many`), for those whose
    WeCom answer was prefetched and is a contact; None for each one left to :func:`refresh`
    (not prefetched, an error, or OneID's one-by-one path), in a transaction of its own."""
    answers = _prefetched.get() or {}
    ready = [(n, answers.get(e)) for n, e in enumerate(external_userids)]
    ready = [(n, a) for n, a in ready if isinstance(a, dict)]
    mirrored = apply_many(corp_id, [(a["external_contact"], a.get("follow_user") or []) for _, a in ready], source)
    out: list[Customer | None] = [None] * len(external_userids)
    for (n, _), customer in zip(ready, mirrored, strict=True):
        out[n] = customer
    return out


def apply(corp_id: int, contact: dict, follow_infos: list[dict], source: str) -> Customer:
    """Mirror one contact and the given follow relations (WeCom's current view of them)."""
    customer = oneid.resolve_or_create(corp_id, _identities(contact), source, **_profile(contact))
    _mirror(corp_id, [(customer, contact, follow_infos)])
    return customer


def apply_many(corp_id: int, items: list[tuple[dict, list[dict]]], source: str) -> list[Customer | None]:
    """:func:`apply` for many (contact, follow_infos) at once: one OneID call
    (:func:`oneid.resolve_many`) and a few statements for all their relations and tags. None for
    an item OneID leaves to the one-by-one path: mirror it with :func:`apply`, in a transaction
    of its own where it can be."""
    customers = oneid.resolve_many(
        corp_id, [_identities(contact) for contact, _ in items], source, [_profile(contact) for contact, _ in items]
    )
    _mirror(
        corp_id,
        [(customer, contact, infos) for customer, (contact, infos) in zip(customers, items, strict=True) if customer],
    )
    return customers


def _identities(contact: dict) -> list[tuple[IdentityType, str]]:
    identities = [(IdentityType.external_userid, contact["external_userid"])]
    if contact.get("unionid"):
        identities.append((IdentityType.unionid, contact["unionid"]))
    return identities


def _profile(contact: dict) -> dict:
    return {
        "name": contact.get("name") or "",
        "avatar": contact.get("avatar") or "",
        "gender": int(contact.get("gender") or 0),
        "corp_name": contact.get("corp_name") or "",
    }


def _mirror(corp_id: int, rows: list[tuple[Customer, dict, list[dict]]]) -> None:
    """Copy each contact's profile onto its customer and upsert the follow relations given,
    with their tags: the same few statements for one contact or a hundred."""
    for customer, contact, _ in rows:
        for key, value in _profile(contact).items():
            if value not in (None, ""):
                setattr(customer, key, value)
    follows = [(customer, info) for customer, _, infos in rows for info in infos]
    if not follows:
        db.session.flush()
        return
    reps = staff_service.ensure_many(corp_id, [info["userid"] for _, info in follows])
    pairs = list({(reps[info["userid"]].id, customer.id) for customer, info in follows})
    relations = {
        (r.staff_id, r.customer_id): r
        for r in db.session.scalars(
            select(FollowRelation)
            .where(
                FollowRelation.corp_id == corp_id,
                tuple_(FollowRelation.staff_id, FollowRelation.customer_id).in_(pairs),
            )
            .options(selectinload(FollowRelation.tags))
        )
    }
    tags = _corp_tags(corp_id, [_follow_tags(info) for _, info in follows])
    for (customer, info), tag_rows in zip(follows, tags, strict=True):
        rep = reps[info["userid"]]
        relation = relations.get((rep.id, customer.id))
        if relation is None:
            relation = relations[rep.id, customer.id] = FollowRelation(
                corp_id=corp_id, staff_id=rep.id, customer_id=customer.id, tags=[]
            )
            db.session.add(relation)
        relation.status = FollowStatus.active
        relation.deleted_at = relation.deleted_by = None
        relation.remark = info.get("remark") or ""
        relation.description = info.get("description") or ""
        relation.add_way = int(info.get("add_way") or 0)
        relation.state = info.get("state") or relation.state or ""
        relation.added_at = from_timestamp(info.get("createtime"))
        if {t.id for t in relation.tags} != {t.id for t in tag_rows}:
            relation.tags = tag_rows
    db.session.flush()


def _follow_tags(info: dict) -> list[dict]:
    """A follower's tags: ``externalcontact/get`` gives ``tags`` [{tag_id, tag_name, type…}],
    ``batch/get_by_user`` only corp tag ids (``tag_id``; the sync reads their names first)."""
    if "tags" in info:
        return info["tags"] or []
    return [{"tag_id": tag_id, "type": CORP_TAG} for tag_id in info.get("tag_id") or []]


def _corp_tags(corp_id: int, tag_lists: list[list[dict]]) -> list[list[Tag]]:
    """The Tag rows of each list of WeCom follow tags (corp tags only), made when unknown."""
    wanted = [
        {t["tag_id"]: t for t in tags if t.get("type", CORP_TAG) == CORP_TAG and t.get("tag_id")} for tags in tag_lists
    ]
    ids = {tag_id for w in wanted for tag_id in w}
    if not ids:
        return [[] for _ in tag_lists]
    rows = {
        t.wecom_tag_id: t
        for t in db.session.scalars(select(Tag).where(Tag.corp_id == corp_id, Tag.wecom_tag_id.in_(ids)))
    }
    for w in wanted:
        for tag_id, tag in w.items():
            row = rows.get(tag_id)
            if row is None:
                row = rows[tag_id] = Tag(corp_id=corp_id, wecom_tag_id=tag_id)
                db.session.add(row)
            row.name = tag.get("tag_name") or row.name or tag_id
            row.group_name = tag.get("group_name") or row.group_name or ""
    db.session.flush()
    return [[rows[tag_id] for tag_id in w] for w in wanted]


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
