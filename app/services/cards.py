"""Business cards and their content: editing (admins: any card of the corp; reps: their own),
the rep's mini-program contact way, and the card a visitor is shown.

Each card gets the rep's own WeCom contact way for the mini-program scene (``add_contact_way``
type 1, scene 1, ``state`` = ``card:<id>``), created by a job so a WeCom hiccup never fails the
edit: transient errors retry with back-off, a refusal is kept on the card for the admin to see
and retry. When a customer adds the rep from the card, the callback carries that state, and
:func:`on_contact_added` attributes the customer to the card.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import requests
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from wechatpy.exceptions import WeChatClientException

from app.errors import ApiError, Conflict, NotFound
from app.extensions import db
from app.models import (
    Card,
    ContactWayStatus,
    ContentItem,
    Customer,
    FollowRelation,
    FollowStatus,
    IdentityType,
    Staff,
    StaffStatus,
    utcnow,
)
from app.schemas.common import Page
from app.services import audit, oneid
from app.services.auth import Principal
from app.services.paging import paginate
from jobs.queues import enqueue, queues
from wecom.client import contact_client
from wecom.errors import is_transient

log = logging.getLogger(__name__)

STATE_PREFIX = "card:"
# Seconds between attempts after a transient WeCom failure; past the last one the way is failed.
CONTACT_WAY_BACKOFF = (5, 30, 120, 600)
MINI_PROGRAM_SCENE = 1
SINGLE_USER = 1


def contact_way_state(card_id: int) -> str:
    """The contact way ``state`` naming a card (≤ 30 characters, as WeCom requires)."""
    return f"{STATE_PREFIX}{card_id}"


def card_id_from_state(state: str | None) -> int | None:
    if state and state.startswith(STATE_PREFIX) and state[len(STATE_PREFIX) :].isdigit():
        return int(state[len(STATE_PREFIX) :])
    return None


# -- visibility -----------------------------------------------------------------------------
def visible(principal: Principal) -> Select:
    """Cards ``principal`` may see and edit: the corp's for an admin, their own for a rep."""
    stmt = select(Card).where(Card.corp_id == principal.corp_id)
    if not principal.is_admin:
        stmt = stmt.where(Card.staff_id == (principal.staff_id or -1))
    return stmt


def get(principal: Principal, card_id: int) -> Card:
    """A card ``principal`` may see; 404 otherwise (a rep must not learn of another's card)."""
    card = db.session.scalar(visible(principal).where(Card.id == card_id).options(selectinload(Card.staff)))
    if card is None:
        raise NotFound("card")
    return card


def search(
    principal: Principal, *, page: int, per_page: int, staff_id: int | None = None, active: bool | None = None
) -> Page:
    stmt = visible(principal).options(selectinload(Card.staff))
    if staff_id is not None:
        stmt = stmt.where(Card.staff_id == staff_id)
    if active is not None:
        stmt = stmt.where(Card.active.is_(active))
    return paginate(stmt, page, per_page, Card.id)


# -- editing --------------------------------------------------------------------------------
def create(principal: Principal, data: dict) -> Card:
    """A card for a rep (an admin names ``staff_id``; a rep makes their own). One per rep: 409
    if the rep has one. Its contact way is created by a job."""
    staff_id = data.pop("staff_id", None)
    if not principal.is_admin:
        if staff_id not in (None, principal.staff_id) or principal.staff_id is None:
            raise ApiError(403, "forbidden", "a rep may only create their own card")
        staff_id = principal.staff_id
    if staff_id is None:
        raise ApiError(422, "validation_error", "the request has invalid fields", {"staff_id": ["required"]})
    staff = db.session.get(Staff, staff_id)
    if staff is None or staff.corp_id != principal.corp_id:
        raise ApiError(422, "validation_error", "the request has invalid fields", {"staff_id": ["unknown rep"]})
    if staff.status != StaffStatus.active:
        raise ApiError(422, "validation_error", "the request has invalid fields", {"staff_id": ["the rep has left"]})
    if db.session.scalar(select(Card.id).where(Card.corp_id == principal.corp_id, Card.staff_id == staff_id)):
        raise Conflict("this rep already has a card", {"staff_id": ["already has a card"]})
    card = Card(corp_id=principal.corp_id, staff_id=staff_id, contact_way_status=ContactWayStatus.pending, **data)
    card.display_name = card.display_name or staff.name
    db.session.add(card)
    try:
        db.session.flush()
    except IntegrityError:  # the same rep's card, created a moment ago by another request
        db.session.rollback()
        raise Conflict("this rep already has a card", {"staff_id": ["already has a card"]}) from None
    card.contact_way_state = contact_way_state(card.id)
    audit.record(principal.corp_id, principal.actor, "card.create", "card", card.id, data={"staff_id": staff_id})
    db.session.commit()
    enqueue(ensure_contact_way_job, card.id)
    return get(principal, card.id)


def update(principal: Principal, card_id: int, data: dict) -> Card:
    """Change a card's fields; ``active: false`` archives it (its contact way is deleted) and
    ``active: true`` restores it (a new contact way is made)."""
    card = get(principal, card_id)
    activate = data.pop("active", None)
    if activate is not None and not principal.is_admin:
        raise ApiError(403, "forbidden", "only an admin archives or restores a card")
    for key, value in data.items():
        setattr(card, key, value)
    job = None
    if activate is not None and activate != card.active:
        card.active = activate
        if activate:
            card.contact_way_status, card.contact_way_error, card.contact_way_attempts = (
                ContactWayStatus.pending,
                None,
                0,
            )
            job = ensure_contact_way_job
        else:
            job = release_contact_way_job
    audit.record(
        principal.corp_id,
        principal.actor,
        "card.update",
        "card",
        card.id,
        data={**{k: v for k, v in data.items() if k != "intro"}, **({"active": activate} if job else {})},
    )
    db.session.commit()
    if job:
        enqueue(job, card.id)
    return get(principal, card.id)


def archive(principal: Principal, card_id: int) -> None:
    """Archive a card (DELETE): hidden from visitors, its contact way deleted; its history stays."""
    update(principal, card_id, {"active": False})


def retry_contact_way(principal: Principal, card_id: int) -> Card:
    """Try again to create a card's contact way (after a refusal was fixed in WeCom)."""
    card = get(principal, card_id)
    if not card.active:
        raise Conflict("the card is archived")
    if card.contact_way_status != ContactWayStatus.ready:
        card.contact_way_status, card.contact_way_error, card.contact_way_attempts = ContactWayStatus.pending, None, 0
        db.session.commit()
        enqueue(ensure_contact_way_job, card.id)
    return card


def contents(principal: Principal, card_id: int) -> list[ContentItem]:
    card = get(principal, card_id)
    return list(_contents(card.id))


def _contents(card_id: int):
    return db.session.scalars(
        select(ContentItem)
        .where(ContentItem.card_id == card_id, ContentItem.archived_at.is_(None))
        .order_by(ContentItem.position, ContentItem.id)
    ).all()


def add_content(principal: Principal, card_id: int, data: dict) -> ContentItem:
    card = get(principal, card_id)
    if data.get("position") is None:
        data["position"] = (
            db.session.scalar(select(func.max(ContentItem.position)).where(ContentItem.card_id == card.id)) or 0
        ) + 1
    item = ContentItem(corp_id=card.corp_id, card_id=card.id, **data)
    db.session.add(item)
    db.session.flush()
    audit.record(
        principal.corp_id,
        principal.actor,
        "card.content.add",
        "card_content",
        item.id,
        data={"card_id": card.id, "title": item.title},
    )
    db.session.commit()
    return item


def _content(principal: Principal, card_id: int, content_id: int) -> ContentItem:
    card = get(principal, card_id)
    item = db.session.get(ContentItem, content_id)
    if item is None or item.card_id != card.id or item.archived_at is not None:
        raise NotFound("content item")
    return item


def update_content(principal: Principal, card_id: int, content_id: int, data: dict) -> ContentItem:
    item = _content(principal, card_id, content_id)
    for key, value in data.items():
        setattr(item, key, value)
    audit.record(principal.corp_id, principal.actor, "card.content.update", "card_content", item.id, data=data)
    db.session.commit()
    return item


def archive_content(principal: Principal, card_id: int, content_id: int) -> None:
    """Take an item off the card. Kept, archived: its events, visits and stats stay."""
    item = _content(principal, card_id, content_id)
    item.archived_at = utcnow()
    audit.record(principal.corp_id, principal.actor, "card.content.archive", "card_content", item.id)
    db.session.commit()


# -- the contact way -------------------------------------------------------------------------
def ensure_contact_way_job(card_id: int) -> str:
    """RQ entry point of :func:`ensure_contact_way`."""
    return ensure_contact_way(card_id)


def ensure_contact_way(card_id: int) -> str:
    """Create the card's mini-program contact way unless it has one. Returns the card's status."""
    card = db.session.get(Card, card_id)
    if card is None or not card.active:
        return "skipped"
    if card.contact_way_config_id and card.contact_way_status == ContactWayStatus.ready:
        return str(card.contact_way_status)
    staff = db.session.get(Staff, card.staff_id)
    card.contact_way_attempts += 1
    try:
        answer = contact_client().external_contact.add_contact_way(
            type=SINGLE_USER,
            scene=MINI_PROGRAM_SCENE,
            style=1,
            remark=f"card {card.display_name}"[:30],
            skip_verify=True,
            state=card.contact_way_state or contact_way_state(card.id),
            user=[staff.userid],
        )
    except (WeChatClientException, requests.RequestException) as exc:
        card.contact_way_error = str(exc)[:1000]
        attempt = card.contact_way_attempts
        if is_transient(exc) and attempt <= len(CONTACT_WAY_BACKOFF):
            card.contact_way_status = ContactWayStatus.pending
            db.session.commit()
            delay = CONTACT_WAY_BACKOFF[attempt - 1]
            queues()["default"].enqueue_in(timedelta(seconds=delay), ensure_contact_way_job, card.id)
            log.warning("contact way for card %s failed (%s); retrying in %ss", card.id, exc, delay)
            return "retrying"
        card.contact_way_status = ContactWayStatus.failed
        db.session.commit()
        log.error("contact way for card %s refused: %s", card.id, exc)
        return str(card.contact_way_status)
    card.contact_way_config_id = answer["config_id"]
    card.contact_way_status, card.contact_way_error = ContactWayStatus.ready, None
    audit.record(card.corp_id, "system", "card.contact_way", "card", card.id, data={"config_id": answer["config_id"]})
    db.session.commit()
    return str(card.contact_way_status)


def release_contact_way_job(card_id: int) -> str:
    """Delete an archived card's contact way in WeCom (a way that is gone already is fine)."""
    card = db.session.get(Card, card_id)
    if card is None or card.active or not card.contact_way_config_id:
        return "skipped"
    try:
        contact_client().external_contact.del_contact_way(card.contact_way_config_id)
    except WeChatClientException as exc:
        if is_transient(exc):
            raise  # RQ marks the job failed; archiving again or the admin's retry re-runs it
        log.info("contact way %s of card %s was already gone (%s)", card.contact_way_config_id, card.id, exc)
    card.contact_way_config_id = None
    card.contact_way_status = ContactWayStatus.released
    db.session.commit()
    return str(card.contact_way_status)


# -- callbacks -------------------------------------------------------------------------------
def on_contact_added(corp_id: int, fields: dict) -> None:
    """Event handler (add_external_contact): a customer who added a rep from a card's contact
    way is attributed to that card — ``last_channel`` (and ``first_channel`` when empty)
    become ``card:<id>``. Runs after the mirror stored the customer; idempotent."""
    card_id = card_id_from_state(fields.get("State"))
    if card_id is None:
        return
    card = db.session.get(Card, card_id)
    customer_id = oneid.customer_id_for(corp_id, IdentityType.external_userid, fields.get("ExternalUserID", ""))
    if card is None or card.corp_id != corp_id or customer_id is None:
        return
    customer = db.session.get(Customer, customer_id)
    channel = contact_way_state(card.id)
    customer.first_channel = customer.first_channel or channel
    customer.last_channel = channel


# -- what a visitor sees ---------------------------------------------------------------------
# (corp_id, departed staff_id, customer_id) → the staff id now taking care of that customer, or
# None; consulted first by card_for_visitor. The hand-over registers one (app/services/hooks.py).
successor_resolvers: list[Callable[[int, int, int], int | None]] = []


def card_for_visitor(card_id: int, customer_id: int | None) -> Card | None:
    """The card to show a visitor who opened ``card_id``: that card while its rep works here;
    once the rep has left (Staff.status resigned), the card of whoever took over — for a known
    customer, the rep of their most recent active follow relation (FollowRelation, status
    active) with another active rep of the corp who has an active card; for an anonymous
    visitor (or a customer with no such relation), the rep holding most of the leaver's former
    customers today. When nobody qualifies, the leaver's own card (the caller hides its contact
    way). None when the card does not exist or is archived."""
    card = db.session.get(Card, card_id)
    if card is None or not card.active:
        return None
    staff = db.session.get(Staff, card.staff_id)
    if staff.status != StaffStatus.resigned:
        return card
    if customer_id is not None:
        # The hand-over knows who is taking this customer even before WeCom completes the
        # transfer (up to 24 h), when the follow relations below have not moved yet.
        for resolve in successor_resolvers:
            taker_id = resolve(card.corp_id, staff.id, customer_id)
            taker_card = taker_id and db.session.scalar(
                select(Card).where(Card.staff_id == taker_id, Card.active.is_(True)).limit(1)
            )
            if taker_card:
                return taker_card
    heir = _active_card_rep()
    if customer_id is not None:
        successor = db.session.scalar(
            heir.where(FollowRelation.customer_id == customer_id).order_by(FollowRelation.added_at.desc()).limit(1)
        )
        if successor is not None:
            return successor
    former = select(FollowRelation.customer_id).where(
        FollowRelation.corp_id == card.corp_id, FollowRelation.staff_id == staff.id
    )
    successor = db.session.scalar(
        heir.where(FollowRelation.customer_id.in_(former))
        .group_by(Card.id)
        .order_by(func.count().desc(), Card.id)
        .limit(1)
    )
    return successor or card


def _active_card_rep() -> Select:
    """Active cards of active reps, joined to those reps' active follow relations."""
    return (
        select(Card)
        .join(Staff, Staff.id == Card.staff_id)
        .join(FollowRelation, FollowRelation.staff_id == Card.staff_id)
        .where(
            Card.active.is_(True),
            Staff.status == StaffStatus.active,
            FollowRelation.status == FollowStatus.active,
            FollowRelation.corp_id == Card.corp_id,
        )
    )


@dataclass
class PublicCard:
    """A card as a mini-program visitor sees it."""

    id: int
    requested_id: int
    display_name: str
    title: str
    company: str
    avatar: str
    phone: str
    email: str
    wechat: str
    intro: str
    contents: list[ContentItem]
    contact_way: dict | None


def public_card(corp_id: int, card_id: int, customer_id: int | None) -> PublicCard:
    """The card a visitor of the corp who opened ``card_id`` is shown (see
    :func:`card_for_visitor`), its content and the contact way to add its rep — none when
    the rep has left and nobody took over, or the way is not ready yet."""
    card = card_for_visitor(card_id, customer_id)
    if card is None or card.corp_id != corp_id:
        raise NotFound("card")
    staff = db.session.get(Staff, card.staff_id)
    reachable = staff.status == StaffStatus.active and card.contact_way_status == ContactWayStatus.ready
    return PublicCard(
        id=card.id,
        requested_id=card_id,
        display_name=card.display_name,
        title=card.title,
        company=card.company,
        avatar=card.avatar,
        phone=card.phone if staff.status == StaffStatus.active else "",
        email=card.email,
        wechat=card.wechat if staff.status == StaffStatus.active else "",
        intro=card.intro,
        contents=list(_contents(card.id)),
        contact_way={"config_id": card.contact_way_config_id} if reachable else None,
    )
