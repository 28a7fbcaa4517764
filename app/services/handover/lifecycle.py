"""Making, approving and cancelling hand-overs; the departure hooks other features plug into."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.errors import ApiError, Conflict, NotFound
from app.extensions import db
from app.models import (
    ChatState,
    Handover,
    HandoverGroupChat,
    HandoverItem,
    HandoverKind,
    HandoverStatus,
    HandoverTrigger,
    ItemState,
    Staff,
    StaffStatus,
    utcnow,
)
from app.models.handover import OPEN_ITEM_STATES
from app.services import audit
from app.services.auth import Principal
from app.services.handover import groupchats
from app.services.handover import policy as policies
from app.services.handover.execute import enqueue_after_commit
from app.services.handover.policy import Plan, Planner, Policy
from app.services.handover.transitions import history_entry

log = logging.getLogger(__name__)

# Called with (corp_id, staff_id) when a rep leaves the company (delete_user, or found resigned
# by the reconciliation), inside that transaction: hooks must not commit. Contact codes drop the
# rep from their lists here; cards route visitors to each customer's new rep (current_rep_for).
on_rep_departed: list[Callable[[int, int], None]] = []


def notify_departed(corp_id: int, staff_id: int) -> None:
    """Run the ``on_rep_departed`` hooks (inside the caller's transaction)."""
    for hook in list(on_rep_departed):
        hook(corp_id, staff_id)


@dataclass
class Request:
    """What an admin asks for (the API body, loaded)."""

    kind: HandoverKind
    handover_userid: str
    customer_ids: list[int] | None = None
    strategy: str = "policy"  # policy | successor | explicit
    successor_userid: str | None = None
    plan: list[dict] = field(default_factory=list)
    transfer_message: str | None = None
    include_group_chats: bool | None = None
    group_chat_owner_userid: str | None = None


def _staff(corp_id: int, userid: str) -> Staff | None:
    return db.session.scalar(select(Staff).where(Staff.corp_id == corp_id, Staff.userid == userid))


def _active_taker(corp_id: int, userid: str, departing: Staff, field_name: str, errors: dict) -> Staff | None:
    staff = _staff(corp_id, userid)
    if staff is None or staff.status != StaffStatus.active:
        errors.setdefault(field_name, []).append(f"{userid} is not an active rep")
        return None
    if staff.id == departing.id:
        errors.setdefault(field_name, []).append("the departing rep cannot take their own customers")
        return None
    return staff


def build_plan(
    corp_id: int,
    kind: HandoverKind,
    departing: Staff,
    policy: Policy,
    *,
    customer_ids: list[int] | None = None,
    successor: Staff | None = None,
    explicit: dict[int, Staff] | None = None,
    transfer_message: str = "",
    include_group_chats: bool = True,
    chat_owner: Staff | None = None,
) -> Plan:
    """Who takes which customer and chat. Reads only: a dry run shows exactly this."""
    if successor is None and explicit is None:
        named = policy.successor_for(departing.userid)
        successor = _staff(corp_id, named) if named else None
        if successor is not None and (successor.status != StaffStatus.active or successor.id == departing.id):
            successor = None
    named_reps = [s for s in [successor, chat_owner, *(explicit or {}).values()] if s is not None]
    planner = Planner(corp_id, policy, departing, named=named_reps)
    customers = policies.customers_of(corp_id, departing.id, customer_ids)
    if explicit is not None:
        customers = [c for c in customers if c[0] in explicit]
    assignments = policies.assign(corp_id, planner, customers, successor=successor, explicit=explicit)
    plan = Plan(kind, departing, policy, assignments, [], transfer_message, include_group_chats)
    if include_group_chats:
        owner = chat_owner or successor or next((s for s, _ in plan.takers()), None) or planner.pick()
        plan.chats = groupchats.plan_chats(corp_id, departing.userid, owner, policy)
    return plan


def persist(plan: Plan, trigger: HandoverTrigger, actor: str) -> Handover:
    """Store a plan as a hand-over (flushed, not committed); a running one starts after commit."""
    corp_id, now = plan.departing.corp_id, utcnow()
    status = HandoverStatus.pending_approval if plan.approval_required else HandoverStatus.running
    chat_owner = next((c.new_owner for c in plan.chats if c.new_owner is not None), None)
    handover = Handover(
        corp_id=corp_id,
        kind=plan.kind,
        status=status,
        trigger=trigger,
        handover_staff_id=plan.departing.id,
        policy=plan.policy.as_dict(),
        transfer_message=plan.transfer_message or "",
        include_group_chats=plan.include_group_chats,
        created_by=actor,
        approval_required=plan.approval_required,
        runtime={"chat_owner_id": chat_owner.id} if chat_owner is not None else {},
        next_step_at=now if status == HandoverStatus.running else None,
    )
    db.session.add(handover)
    db.session.flush()
    rows = []
    for a in plan.assignments:
        state = ItemState.planned if a.taker is not None else ItemState.taker_at_limit
        note = None if a.taker is not None else "no rep has room"
        taker_userid = a.taker.userid if a.taker is not None else None
        rows.append(
            {
                "corp_id": corp_id,
                "handover_id": handover.id,
                "customer_id": a.customer_id,
                "external_userid": a.external_userid,
                "from_staff_id": plan.departing.id,
                "taker_staff_id": a.taker.id if a.taker is not None else None,
                "state": state,
                "reason": note,
                "finished_at": None if a.taker is not None else now,
                "history": [history_entry(state, taker_userid, a.taker.id if a.taker else None, None, note)],
                "created_at": now,
                "updated_at": now,
            }
        )
    if rows:
        db.session.execute(HandoverItem.__table__.insert(), rows)
    if plan.chats:
        db.session.execute(
            HandoverGroupChat.__table__.insert(),
            [groupchats.chat_row(corp_id, handover.id, c, plan.departing.userid) for c in plan.chats],
        )
    unassigned = sum(1 for a in plan.assignments if a.taker is None)
    audit.record(
        corp_id,
        actor,
        "handover.created",
        "handover",
        handover.id,
        data={
            "kind": str(plan.kind),
            "trigger": str(trigger),
            "from": plan.departing.userid,
            "customers": len(plan.assignments),
            "group_chats": len(plan.chats),
            "takers": {s.userid: n for s, n in plan.takers()},
            "no_taker": unassigned,
            "status": str(status),
        },
    )
    if unassigned:
        audit.record(
            corp_id,
            "system",
            "handover.needs_attention",
            "handover",
            handover.id,
            reason=f"{unassigned} taker_at_limit",
            data={"new": {"taker_at_limit": unassigned}},
        )
    if status == HandoverStatus.running:
        enqueue_after_commit(handover.id)
    return handover


def open_resigned(corp_id: int, staff_id: int) -> Handover | None:
    """The rep's resigned hand-over still pending or running, if any."""
    return db.session.scalar(
        select(Handover).where(
            Handover.corp_id == corp_id,
            Handover.handover_staff_id == staff_id,
            Handover.kind == HandoverKind.resigned,
            Handover.status.in_([HandoverStatus.pending_approval, HandoverStatus.running]),
        )
    )


def latest_of(corp_id: int, staff_id: int) -> Handover | None:
    """The most recent hand-over from this rep, of any kind and status."""
    return db.session.scalar(
        select(Handover)
        .where(Handover.corp_id == corp_id, Handover.handover_staff_id == staff_id)
        .order_by(Handover.id.desc())
        .limit(1)
    )


def start_resigned(
    corp_id: int,
    staff: Staff,
    trigger: HandoverTrigger,
    customer_ids: list[int] | None = None,
    group_chats: bool = True,
) -> Handover | None:
    """A resigned rep's hand-over by the corp's policy (None when there is nothing to hand over).
    Runs inside the caller's transaction."""
    policy = policies.load(corp_id)
    plan = build_plan(
        corp_id,
        HandoverKind.resigned,
        staff,
        policy,
        customer_ids=customer_ids,
        include_group_chats=group_chats and policy.include_group_chats,
    )
    if not plan.assignments and not plan.chats:
        return None
    return persist(plan, trigger, "system")


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "your role may not do this")


def plan_request(principal: Principal, request: Request) -> Plan:
    """Check an admin's request against the database and plan it (no writes)."""
    _require_admin(principal)
    corp_id = principal.corp_id
    errors: dict[str, list] = {}
    departing = _staff(corp_id, request.handover_userid)
    if departing is None:
        raise ApiError(422, "validation_error", "unknown rep", {"handover_userid": ["unknown rep"]})
    if request.kind == HandoverKind.resigned and departing.status != StaffStatus.resigned:
        errors["kind"] = [f"{departing.userid} has not resigned: use on_the_job"]
    if request.kind == HandoverKind.on_the_job and departing.status != StaffStatus.active:
        errors["kind"] = [f"{departing.userid} has resigned: use resigned"]
    policy = policies.load(corp_id)
    successor = explicit = chat_owner = None
    if request.strategy == "successor":
        successor = _active_taker(corp_id, request.successor_userid, departing, "successor_userid", errors)
    customer_ids = request.customer_ids
    if request.strategy == "explicit":
        explicit = {}
        takers: dict[str, Staff | None] = {}
        for index, entry in enumerate(request.plan):
            userid = entry["takeover_userid"]
            if userid not in takers:
                takers[userid] = _active_taker(corp_id, userid, departing, f"plan.{index}", errors)
            if entry["customer_id"] in explicit:
                errors.setdefault(f"plan.{index}", []).append("customer listed twice")
            if takers[userid] is not None:
                explicit[entry["customer_id"]] = takers[userid]
        customer_ids = [entry["customer_id"] for entry in request.plan]
    if request.group_chat_owner_userid:
        chat_owner = _active_taker(
            corp_id, request.group_chat_owner_userid, departing, "group_chat_owner_userid", errors
        )
    if errors:
        raise ApiError(422, "validation_error", "the hand-over cannot be planned", errors)
    if customer_ids is not None:
        _check_customers(corp_id, departing, customer_ids)
    include_chats = request.include_group_chats
    if include_chats is None:
        include_chats = policy.include_group_chats if request.kind == HandoverKind.resigned else False
    message = request.transfer_message
    if message is None and request.kind == HandoverKind.on_the_job:
        message = policy.transfer_message
    plan = build_plan(
        corp_id,
        request.kind,
        departing,
        policy,
        customer_ids=customer_ids,
        successor=successor,
        explicit=explicit,
        transfer_message=message or "",
        include_group_chats=include_chats,
        chat_owner=chat_owner,
    )
    if not plan.assignments and not plan.chats:
        raise ApiError(
            422,
            "validation_error",
            "nothing to hand over",
            {"handover_userid": [f"{departing.userid} has no customers or group chats to hand over"]},
        )
    return plan


def _check_customers(corp_id: int, departing: Staff, customer_ids: list[int]) -> None:
    """Every chosen customer must be a live customer of the rep and not already on its way."""
    mine = {c[0] for c in policies.customers_of(corp_id, departing.id)}
    in_flight = set(
        db.session.scalars(
            select(HandoverItem.customer_id).where(
                HandoverItem.corp_id == corp_id,
                HandoverItem.from_staff_id == departing.id,
                HandoverItem.state.in_(OPEN_ITEM_STATES),
                HandoverItem.customer_id.in_(customer_ids),
            )
        )
    )
    busy = sorted(c for c in customer_ids if c in in_flight)
    if busy:
        raise Conflict("some customers are already being handed over", {"customer_ids": [str(c) for c in busy]})
    unknown = sorted({c for c in customer_ids if c not in mine})
    if unknown:
        raise ApiError(
            422,
            "validation_error",
            "some customers are not the rep's",
            {"customer_ids": [f"{c} is not a customer of {departing.userid}" for c in unknown]},
        )


def create(principal: Principal, request: Request) -> Handover:
    """An admin's hand-over, stored and (unless approval is required) started. Committed."""
    plan = plan_request(principal, request)
    try:
        handover = persist(plan, HandoverTrigger.admin, principal.actor)
        db.session.commit()
    except IntegrityError as exc:  # another hand-over took some of these customers meanwhile
        db.session.rollback()
        raise Conflict("some customers are already being handed over") from exc
    return handover


def _get(principal: Principal, handover_id: int) -> Handover:
    handover = db.session.get(Handover, handover_id)
    if handover is None or handover.corp_id != principal.corp_id:
        raise NotFound("hand-over")
    return handover


def approve(principal: Principal, handover_id: int) -> Handover:
    """Start a hand-over waiting for approval (admins). Committed; its first step follows."""
    _require_admin(principal)
    handover = _get(principal, handover_id)
    if handover.status != HandoverStatus.pending_approval:
        raise Conflict(f"the hand-over is {handover.status}, not pending approval")
    now = utcnow()
    handover.status, handover.approved_by, handover.approved_at = HandoverStatus.running, principal.actor, now
    handover.next_step_at = now
    audit.record(principal.corp_id, principal.actor, "handover.approved", "handover", handover.id)
    enqueue_after_commit(handover.id)
    db.session.commit()
    return handover


def cancel(principal: Principal, handover_id: int, reason: str | None = None) -> Handover:
    """Stop sending: planned customers and chats are cancelled; what WeCom already has (requested,
    waiting) cannot be withdrawn and is still followed until final."""
    _require_admin(principal)
    handover = _get(principal, handover_id)
    if handover.status not in (HandoverStatus.pending_approval, HandoverStatus.running):
        raise Conflict(f"the hand-over is {handover.status}")
    now = utcnow()
    handover.status, handover.cancelled_by, handover.cancelled_at = HandoverStatus.cancelled, principal.actor, now
    db.session.commit()  # a running step sees this before its next batch and stops sending
    items, chats = _cancel_planned(handover_id, reason or "cancelled", now)
    handover = db.session.get(Handover, handover_id)
    audit.record(
        principal.corp_id,
        principal.actor,
        "handover.cancelled",
        "handover",
        handover.id,
        reason=reason,
        data={"customers_cancelled": items, "group_chats_cancelled": chats},
    )
    in_flight = db.session.scalar(
        select(HandoverItem.id)
        .where(HandoverItem.handover_id == handover_id, HandoverItem.state.in_(OPEN_ITEM_STATES))
        .limit(1)
    )
    if in_flight is None:
        handover.next_step_at = handover.next_poll_at = None
    db.session.commit()
    return handover


def _cancel_planned(handover_id: int, reason: str, now) -> tuple[int, int]:
    # Locked: a step claiming a batch at this moment goes first, and its rows are no longer planned.
    items = db.session.scalars(
        select(HandoverItem)
        .where(HandoverItem.handover_id == handover_id, HandoverItem.state == ItemState.planned)
        .with_for_update()
    ).all()
    for item in items:
        item.state, item.reason, item.finished_at = ItemState.cancelled, reason[:128], now
        item.history = [*item.history, history_entry(ItemState.cancelled, None, item.taker_staff_id, None, reason)]
    chats = db.session.scalars(
        select(HandoverGroupChat)
        .where(HandoverGroupChat.handover_id == handover_id, HandoverGroupChat.state == ChatState.planned)
        .with_for_update()
    ).all()
    for chat in chats:
        chat.state, chat.reason, chat.finished_at = ChatState.cancelled, reason[:128], now
        chat.history = [*chat.history, history_entry(ChatState.cancelled, None, chat.new_owner_staff_id, None, reason)]
    db.session.flush()
    return len(items), len(chats)
