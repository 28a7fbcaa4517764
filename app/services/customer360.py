"""The customer 360 view: everything the rep sidebar and the console show about one customer,
read through the services that own each part and scoped to the caller, plus the two things a
rep changes from there: notes and the tags of their own relation.

Scoping follows the one rule (``customers.visible``): a customer the caller may not see is a
404. Inside a visible customer an admin sees everything; a rep sees their own relation (tags,
remark), intent towards them, visits to their cards, alerts about or sent to them and the
hand-overs from or to them. Identities, the source channel and notes belong to the customer and
show to everyone who may see it (a rep who takes a customer over reads the notes of the rep
before them).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from marshmallow import Schema, ValidationError
from sqlalchemy import select
from wechatpy.exceptions import WeChatClientException

from app.errors import ApiError, NotFound
from app.extensions import db
from app.models import (
    Card,
    ContentItem,
    Customer,
    CustomerNote,
    FollowRelation,
    FollowStatus,
    Identity,
    IdentityType,
    IntentLevel,
    Staff,
    Tag,
    User,
)
from app.schemas.note import NoteSchema, TagEditSchema
from app.services import audit, customers, handover, merge, oneid
from app.services.alerts import queries as alert_queries
from app.services.auth import Principal
from app.services.contact_codes import codes as contact_codes
from app.services.signals import presence, stats
from wecom.client import contact_client
from wecom.errors import is_transient

log = logging.getLogger(__name__)

VISITS_SHOWN = 20
NOTES_SHOWN = 50
ALERTS_SHOWN = 20
HANDOVERS_SHOWN = 20
INTENT_RANK = {IntentLevel.cold: 0, IntentLevel.warm: 1, IntentLevel.hot: 2}
UNKNOWN_TAG = 40068
EDIT_GRACE = timedelta(seconds=1)


def _load(schema: Schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ApiError(422, "validation_error", "the request has invalid fields", exc.normalized_messages()) from exc


def _visible_root(principal: Principal, customer_id: int) -> int:
    """The surviving id of a customer ``principal`` may see (merged ids follow); else 404."""
    root = customers.resolve_id(principal.corp_id, customer_id)
    if root is None or db.session.scalar(_visible_ids(principal).where(Customer.id == root)) is None:
        raise NotFound("customer")
    return root


def _visible_ids(principal: Principal):
    return customers.visible(principal).with_only_columns(Customer.id)


def resolve_external(principal: Principal, external_userid: str) -> int:
    """The customer id of a WeCom external_userid (following merges); 404 when unknown or not
    visible to ``principal`` (the sidebar asks with the contact the rep is chatting with)."""
    customer_id = oneid.customer_id_for(principal.corp_id, IdentityType.external_userid, external_userid)
    if customer_id is None:
        raise NotFound("customer")
    return _visible_root(principal, customer_id)


# -- the view ----------------------------------------------------------------------------------


def view(principal: Principal, customer_id: int) -> dict:
    """Everything about one customer for ``principal``; 404 when they may not see it. Keys:
    customer, identities, source, follows, notes, visits, intent, presence, alerts, handovers."""
    detail = customers.get_detail(principal, customer_id)
    customer = detail.customer
    ids = merge.group_ids(principal.corp_id, customer.id)
    visits = _visits(principal, customer.id)
    return {
        "customer": _customer(customer, detail.identities, ids),
        "identities": [
            {
                "type": str(i.type),
                "value": i.value,
                "source": i.source,
                "verified": i.verified,
                "created_at": i.created_at,
            }
            for i in detail.identities
        ],
        "source": contact_codes.touches(principal.corp_id, ids),
        "follows": [_follow(f) for f in detail.follows],
        "notes": notes(principal, ids),
        "visits": visits,
        "intent": _intent(principal, customer.id),
        "presence": _presence(ids, visits),
        "alerts": _alerts(principal, customer.id),
        "handovers": _handovers(principal, ids),
    }


def _customer(customer: Customer, identities, ids: list[int]) -> dict:
    # WeCom's own contact type (WeChat or WeCom user) is not mirrored; what we know is whether
    # the person is a WeCom external contact or only known from the mini-program, phone, imports.
    is_contact = any(i.type == IdentityType.external_userid for i in identities)
    return {
        "id": customer.id,
        "name": customer.name,
        "avatar": customer.avatar,
        "type": "external_contact" if is_contact else "visitor",
        "gender": customer.gender,
        "corp_name": customer.corp_name,
        "created_at": customer.created_at,
        "first_channel": customer.first_channel,
        "last_channel": customer.last_channel,
        "merged_ids": ids[1:],
    }


def _follow(relation: FollowRelation) -> dict:
    return {
        "id": relation.id,
        "staff_id": relation.staff_id,
        "staff_userid": relation.staff.userid,
        "staff_name": relation.staff.name,
        "status": str(relation.status),
        "remark": relation.remark,
        "description": relation.description,
        "state": relation.state,
        "added_at": relation.added_at,
        "deleted_at": relation.deleted_at,
        "deleted_by": str(relation.deleted_by) if relation.deleted_by else None,
        "tags": [{"id": t.id, "name": t.name, "group": t.group_name} for t in relation.tags],
    }


def _visits(principal: Principal, customer_id: int) -> list[dict]:
    """Recent visits to the caller's cards, each with its card, the item read and the share
    chain that brought the visitor (nearest share first)."""
    rows = stats.visits(principal, page=1, per_page=VISITS_SHOWN, customer_id=customer_id).items
    card_names = _by_id(Card, {v.card_id for v in rows}, Card.display_name)
    titles = _by_id(ContentItem, {v.content_id for v in rows if v.content_id}, ContentItem.title)
    chains = stats.share_chains(principal.corp_id, {v.via_share_code for v in rows if v.via_share_code})
    result = []
    for v in rows:
        chain = chains.get(v.via_share_code, []) if v.via_share_code else []
        result.append(
            {
                "id": v.id,
                "card_id": v.card_id,
                "card_name": card_names.get(v.card_id, ""),
                "content_id": v.content_id,
                "content_title": titles.get(v.content_id, "") if v.content_id else None,
                "started_at": v.started_at,
                "last_seen_at": v.last_seen_at,
                "ended_at": v.ended_at,
                "dwell_seconds": round(v.dwell_seconds, 1),
                "via_share_code": v.via_share_code,
                "shared_by": chain[0]["customer_name"] if chain else None,
                "share_depth": chain[0]["depth"] if chain else None,
                "share_chain": chain,
            }
        )
    return result


def _by_id(model, ids: set, column) -> dict:
    if not ids:
        return {}
    return dict(db.session.execute(select(model.id, column).where(model.id.in_(ids))).all())


def _intent(principal: Principal, customer_id: int) -> dict:
    """Intent per rep (a rep: towards them), decayed to now, and the highest of them."""
    per_rep = stats.intents(principal, page=1, per_page=100, customer_id=customer_id).items
    top = max(per_rep, key=lambda r: (INTENT_RANK[IntentLevel(r["level"])], r["score"]), default=None)
    return {
        "score": top["score"] if top else 0.0,
        "level": str(top["level"]) if top else str(IntentLevel.cold),
        "per_rep": per_rep,
    }


def _presence(ids: list[int], visits: list[dict]) -> list[dict]:
    """On which of the caller's cards the customer is right now (live presence in Redis), since
    the start of the visit that is still going on. Only cards among the recent visits can be
    live: a visitor on a card has just had a visit recorded there."""
    card_names = {v["card_id"]: v["card_name"] for v in visits}
    titles = {v["content_id"]: v["content_title"] for v in visits if v["content_id"]}
    latest: dict[int, dict] = {}
    for entry in presence.customer_on(sorted(card_names), set(ids)):
        # One entry per card, even with the card open on two devices: the freshest.
        if entry["card_id"] not in latest or entry["until"] > latest[entry["card_id"]]["until"]:
            latest[entry["card_id"]] = entry
    result = []
    for entry in latest.values():
        open_visits = [v for v in visits if v["card_id"] == entry["card_id"] and v["ended_at"] is None]
        since = min((v["started_at"] for v in open_visits), default=None)
        title = titles.get(entry["content_id"]) if entry["content_id"] else None
        result.append({**entry, "card_name": card_names[entry["card_id"]], "content_title": title, "since": since})
    return result


def _alerts(principal: Principal, customer_id: int) -> list[dict]:
    """Recent alerts about the customer with their delivery state (a rep: their own delivery)."""
    rows = alert_queries.search(principal, page=1, per_page=ALERTS_SHOWN, customer=customer_id).items
    result = []
    for alert in rows:
        deliveries = alert.deliveries
        if not principal.is_admin:
            deliveries = [d for d in deliveries if d.staff_id == principal.staff_id]
        result.append(
            {
                "id": alert.id,
                "kind": str(alert.kind),
                "title": alert.title,
                "text": alert.text,
                "staff_id": alert.staff_id,
                "occurred_at": alert.occurred_at,
                "deliveries": [
                    {
                        "userid": d.userid,
                        "role": d.role,
                        "state": str(d.state),
                        "reason": d.reason,
                        "sent_at": d.sent_at,
                    }
                    for d in deliveries
                ],
            }
        )
    return result


def _handovers(principal: Principal, ids: list[int]) -> list[dict]:
    rows = handover.items_for_customer(principal, ids, limit=HANDOVERS_SHOWN)
    from_staff = _by_id(Staff, {item.from_staff_id for item, _ in rows}, Staff.name)
    return [
        {
            "handover_id": h.id,
            "kind": str(h.kind),
            "status": str(h.status),
            "from_userid": h.handover_staff.userid,
            "from_name": from_staff.get(item.from_staff_id, ""),
            "taker_userid": item.taker.userid if item.taker else None,
            "taker_name": item.taker.name if item.taker else None,
            "state": str(item.state),
            "errcode": item.errcode,
            "reason": item.reason,
            "requested_at": item.requested_at,
            "finished_at": item.finished_at,
            "history": item.history,
        }
        for item, h in rows
    ]


# -- notes -------------------------------------------------------------------------------------


def notes(principal: Principal, customer_ids: list[int], limit: int = NOTES_SHOWN) -> list[dict]:
    """The notes on a customer (all its merged ids), newest first, each saying whether
    ``principal`` may edit it. The caller has checked that the customer is visible."""
    rows = db.session.execute(
        select(CustomerNote, User.username, Staff.name)
        .outerjoin(User, User.id == CustomerNote.author_user_id)
        .outerjoin(Staff, Staff.id == CustomerNote.author_staff_id)
        .where(CustomerNote.corp_id == principal.corp_id, CustomerNote.customer_id.in_(customer_ids))
        .order_by(CustomerNote.created_at.desc(), CustomerNote.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": note.id,
            "body": note.body,
            "author_user_id": note.author_user_id,
            "author_staff_id": note.author_staff_id,
            "author_name": staff_name or username or "",
            "created_at": note.created_at,
            "updated_at": note.updated_at,
            # Both stamps are taken at insert, a moment apart: only a later change is an edit.
            "edited": note.updated_at - note.created_at > EDIT_GRACE,
            "can_edit": _may_edit(principal, note),
        }
        for note, username, staff_name in rows
    ]


def _may_edit(principal: Principal, note: CustomerNote) -> bool:
    return principal.is_admin or note.author_user_id == principal.user_id


def add_note(principal: Principal, customer_id: int, body: str) -> CustomerNote:
    """Add a note to a customer ``principal`` may see (404 otherwise); 422 for an empty or too
    long body. Audited on the customer (so it shows on the timeline); commits."""
    root = _visible_root(principal, customer_id)
    data = _load(NoteSchema(), {"body": body})
    # A merge must not move the customer away between our check and the insert.
    root = oneid.customer_for_write(principal.corp_id, root)
    note = CustomerNote(
        corp_id=principal.corp_id,
        customer_id=root,
        author_user_id=principal.user_id,
        author_staff_id=principal.staff_id,
        body=data["body"],
    )
    db.session.add(note)
    db.session.flush()
    audit.record(principal.corp_id, principal.actor, "customer.note.add", "customer", root, data={"note_id": note.id})
    db.session.commit()
    return note


def edit_note(principal: Principal, note_id: int, body: str) -> CustomerNote:
    """Change a note's text: its author or an admin (403 for another rep who sees the customer,
    404 when the note or its customer is not visible). Audited; commits."""
    note = db.session.scalar(
        select(CustomerNote).where(CustomerNote.id == note_id, CustomerNote.corp_id == principal.corp_id)
    )
    if note is None:
        raise NotFound("note")
    try:
        root = _visible_root(principal, note.customer_id)
    except NotFound:
        raise NotFound("note") from None
    if not _may_edit(principal, note):
        raise ApiError(403, "forbidden", "only the note's author or an admin may edit it")
    data = _load(NoteSchema(), {"body": body})
    if data["body"] != note.body:
        note.body = data["body"]
        audit.record(
            principal.corp_id, principal.actor, "customer.note.edit", "customer", root, data={"note_id": note.id}
        )
    db.session.commit()
    return note


# -- tags --------------------------------------------------------------------------------------


def set_tags(
    principal: Principal,
    customer_id: int,
    add_tag_ids: list[int],
    remove_tag_ids: list[int],
    staff_id: int | None = None,
) -> FollowRelation:
    """Add and remove corp tags on one follow relation of the customer, in WeCom
    (``externalcontact/mark_tag``) and then on our copy (mark_tag fires no callback). A rep edits
    only their own relation; an admin names the rep (``staff_id``) unless the customer has only
    one active relation. WeCom is called first and nothing changes here if it refuses: 422 for a
    tag WeCom no longer has, 503 for a transient failure (try again), 502 otherwise. Commits."""
    data = _load(TagEditSchema(), {"add_tag_ids": add_tag_ids, "remove_tag_ids": remove_tag_ids, "staff_id": staff_id})
    root = oneid.customer_for_write(principal.corp_id, _visible_root(principal, customer_id))
    relation = _relation(principal, root, data["staff_id"])
    wanted = set(data["add_tag_ids"]) | set(data["remove_tag_ids"])
    tags = {
        t.id: t for t in db.session.scalars(select(Tag).where(Tag.corp_id == principal.corp_id, Tag.id.in_(wanted)))
    }
    errors = {
        field: [f"unknown tag {tid}" for tid in data[field] if tid not in tags]
        for field in ("add_tag_ids", "remove_tag_ids")
    }
    errors = {field: messages for field, messages in errors.items() if messages}
    if errors:
        raise ApiError(422, "validation_error", "the request has invalid fields", errors)
    # Sent to WeCom as asked, even where our copy already agrees: mark_tag is idempotent, and
    # our mirror may be stale (tags changed in the WeCom client since the last sync).
    adding = [tags[t] for t in dict.fromkeys(data["add_tag_ids"])]
    removing = [tags[t] for t in dict.fromkeys(data["remove_tag_ids"])]
    _mark_tag(relation, root, adding, removing)
    changed = {t.id for t in adding + removing}
    relation.tags = [t for t in relation.tags if t.id not in changed] + adding
    audit.record(
        principal.corp_id,
        principal.actor,
        "customer.tags",
        "customer",
        root,
        data={
            "staff_id": relation.staff_id,
            "added": [t.name for t in adding],
            "removed": [t.name for t in removing],
        },
    )
    db.session.commit()
    return relation


def _relation(principal: Principal, customer_id: int, staff_id: int | None) -> FollowRelation:
    """The active relation whose tags change: the rep's own; for an admin the named rep's, or
    the only active one."""
    if not principal.is_admin:
        if staff_id is not None and staff_id != principal.staff_id:
            raise NotFound("follow relation")
        staff_id = principal.staff_id or -1
    stmt = select(FollowRelation).where(
        FollowRelation.corp_id == principal.corp_id,
        FollowRelation.customer_id == customer_id,
        FollowRelation.status == FollowStatus.active,
    )
    if staff_id is not None:
        stmt = stmt.where(FollowRelation.staff_id == staff_id)
    relations = list(db.session.scalars(stmt))
    if not relations:
        raise ApiError(409, "conflict", "no active relation with this customer to tag")
    if len(relations) > 1:
        raise ApiError(
            422,
            "validation_error",
            "name the rep whose relation to tag",
            {"staff_id": ["required: several reps follow"]},
        )
    return relations[0]


def _mark_tag(relation: FollowRelation, customer_id: int, adding: list[Tag], removing: list[Tag]) -> None:
    # WeCom knows the relation by the customer's external_userid (the oldest, should a merge
    # have joined two WeCom records of one person).
    external_userid = db.session.scalar(
        select(Identity.value)
        .where(
            Identity.corp_id == relation.corp_id,
            Identity.customer_id == customer_id,
            Identity.type == IdentityType.external_userid,
        )
        .order_by(Identity.id)
        .limit(1)
    )
    if external_userid is None:
        raise ApiError(409, "conflict", "the customer has no WeCom external_userid to tag")
    try:
        contact_client().external_contact.mark_tag(
            relation.staff.userid,
            external_userid,
            add_tag=[t.wecom_tag_id for t in adding],
            remove_tag=[t.wecom_tag_id for t in removing],
        )
    except (WeChatClientException, requests.RequestException) as exc:
        db.session.rollback()
        errcode = getattr(exc, "errcode", None)
        log.info("mark_tag refused for relation %s: %s", relation.id, errcode)
        if errcode == UNKNOWN_TAG:
            raise ApiError(
                422,
                "validation_error",
                "WeCom no longer has one of these tags",
                {"add_tag_ids": ["a tag was deleted in WeCom; sync the tags and try again"]},
            ) from exc
        if is_transient(exc):
            raise ApiError(503, "wecom_unavailable", "WeCom did not answer; try again") from exc
        raise ApiError(502, "wecom_error", f"WeCom refused the change (errcode {errcode})") from exc
