"""Staff departure and hand-over (离职继承 / 在职继承): no customer is lost when a rep leaves.

    policy.py      the corp's policy; planning (same department, least-loaded, caps, successor)
    lifecycle.py   creating (by policy, explicit plan or dry run), approving, cancelling;
                   the ``on_rep_departed`` hooks
    execute.py     one resumable step at a time: requests in batches of ≤100, scheduling
    poll.py        transfer_result with cursors, backoff until every customer is final
    groupchats.py  group chats, ≤100 a call, ≤300 a day per owner
    reconcile.py   get_unassigned_list: customers of resigned reps the callbacks missed
    transitions.py item states, history, audit, relations moved to the taker

This module is the facade the API, the CLI, the callbacks and other features use.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import selectinload

from app.errors import ApiError, NotFound
from app.extensions import db
from app.models import (
    Handover,
    HandoverGroupChat,
    HandoverItem,
    HandoverKind,
    HandoverStatus,
    HandoverTrigger,
    ItemState,
    Staff,
)
from app.models.handover import ATTENTION_STATES, IN_FLIGHT_STATES, OPEN_ITEM_STATES
from app.schemas.common import Page
from app.services import audit
from app.services.auth import Principal
from app.services.handover import policy as policies
from app.services.handover.execute import (
    StepResult,
    advance_job,
    chat_counts,
    enqueue_after_commit,
    item_counts,
    step,
    sweep_job,
)
from app.services.handover.lifecycle import (
    Request,
    approve,
    cancel,
    create,
    latest_of,
    notify_departed,
    on_rep_departed,
    open_resigned,
    plan_request,
    start_resigned,
)
from app.services.handover.policy import Plan, Policy
from app.services.handover.reconcile import reconcile, reconcile_job
from app.services.handover.transitions import Step, on_needs_attention
from app.services.paging import paginate

__all__ = [
    "HandoverView",
    "Preview",
    "Request",
    "StepResult",
    "advance_job",
    "approve",
    "cancel",
    "create",
    "current_rep_for",
    "customers",
    "dry_run",
    "get",
    "get_policy",
    "group_chats",
    "items_for_customer",
    "on_needs_attention",
    "on_rep_departed",
    "on_rep_resigned",
    "on_transfer_failed",
    "open_ids",
    "reconcile",
    "reconcile_job",
    "run_now",
    "search",
    "set_policy",
    "sweep_job",
]


@dataclass
class HandoverView:
    """A hand-over with its counts per state (customers and group chats)."""

    handover: Handover
    counts: dict[str, int]
    group_chats: dict[str, int]

    def __getattr__(self, name):  # the schema reads plain hand-over fields through the view
        return getattr(self.handover, name)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def final(self) -> int:
        return sum(n for state, n in self.counts.items() if ItemState(state) not in OPEN_ITEM_STATES)

    @property
    def needs_attention(self) -> bool:
        return any(self.counts.get(str(s)) for s in ATTENTION_STATES) or bool(self.group_chats.get("failed"))

    @property
    def handover_userid(self) -> str:
        return self.handover.handover_staff.userid

    @property
    def handover_name(self) -> str:
        return self.handover.handover_staff.name


def _visible(principal: Principal) -> Select:
    """Hand-overs ``principal`` may see: the corp's for an admin; for a rep, those from them or
    giving them customers."""
    stmt = select(Handover).where(Handover.corp_id == principal.corp_id)
    if not principal.is_admin:
        mine = principal.staff_id or -1
        stmt = stmt.where(
            (Handover.handover_staff_id == mine)
            | exists().where(HandoverItem.handover_id == Handover.id, HandoverItem.taker_staff_id == mine)
        )
    return stmt


def _item_scope(principal: Principal, handover: Handover):
    """The items of ``handover`` the principal may see (a taker sees only their own)."""
    if principal.is_admin or handover.handover_staff_id == principal.staff_id:
        return HandoverItem.handover_id == handover.id
    return (HandoverItem.handover_id == handover.id) & (HandoverItem.taker_staff_id == (principal.staff_id or -1))


def _views(principal: Principal, handovers: list[Handover]) -> list[HandoverView]:
    ids = [h.id for h in handovers]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    chats: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        stmt = select(HandoverItem.handover_id, HandoverItem.state, func.count()).where(
            HandoverItem.handover_id.in_(ids)
        )
        if not principal.is_admin:
            own = [h.id for h in handovers if h.handover_staff_id == principal.staff_id]
            stmt = stmt.where(
                HandoverItem.handover_id.in_(own) | (HandoverItem.taker_staff_id == (principal.staff_id or -1))
            )
        for handover_id, state, n in db.session.execute(stmt.group_by(HandoverItem.handover_id, HandoverItem.state)):
            counts[handover_id][str(state)] = n
        for handover_id, state, n in db.session.execute(
            select(HandoverGroupChat.handover_id, HandoverGroupChat.state, func.count())
            .where(HandoverGroupChat.handover_id.in_(ids))
            .group_by(HandoverGroupChat.handover_id, HandoverGroupChat.state)
        ):
            chats[handover_id][str(state)] = n
    return [HandoverView(h, counts[h.id], chats[h.id]) for h in handovers]


def search(
    principal: Principal,
    *,
    page: int,
    per_page: int,
    status: HandoverStatus | None = None,
    kind: HandoverKind | None = None,
    staff: str | None = None,
) -> Page:
    """Hand-overs newest first, each with its counts per state."""
    stmt = _visible(principal).options(selectinload(Handover.handover_staff))
    if status:
        stmt = stmt.where(Handover.status == status)
    if kind:
        stmt = stmt.where(Handover.kind == kind)
    if staff:
        stmt = stmt.where(
            Handover.handover_staff_id.in_(
                select(Staff.id).where(Staff.corp_id == principal.corp_id, Staff.userid == staff)
            )
        )
    result = paginate(stmt, page, per_page, Handover.id.desc())
    result.items = _views(principal, result.items)
    return result


def _get_visible(principal: Principal, handover_id: int) -> Handover:
    handover = db.session.scalar(_visible(principal).where(Handover.id == handover_id))
    if handover is None:
        raise NotFound("hand-over")
    return handover


def get(principal: Principal, handover_id: int) -> HandoverView:
    """One hand-over with its counts; 404 when ``principal`` may not see it."""
    return _views(principal, [_get_visible(principal, handover_id)])[0]


def customers(
    principal: Principal,
    handover_id: int,
    *,
    page: int,
    per_page: int,
    state: ItemState | None = None,
    taker: str | None = None,
) -> Page:
    """The hand-over's customers, each with state and history."""
    handover = _get_visible(principal, handover_id)
    stmt = (
        select(HandoverItem)
        .where(_item_scope(principal, handover))
        .options(selectinload(HandoverItem.customer), selectinload(HandoverItem.taker))
    )
    if state:
        stmt = stmt.where(HandoverItem.state == state)
    if taker:
        stmt = stmt.where(
            HandoverItem.taker_staff_id.in_(
                select(Staff.id).where(Staff.corp_id == principal.corp_id, Staff.userid == taker)
            )
        )
    return paginate(stmt, page, per_page, HandoverItem.id)


def items_for_customer(
    principal: Principal, customer_ids: list[int], limit: int = 20
) -> list[tuple[HandoverItem, Handover]]:
    """The hand-over items about these customers (a customer and the ids merged into it),
    newest first, each with its hand-over; a rep sees the items from or to them. The caller
    has already checked that ``principal`` may see the customer."""
    stmt = (
        select(HandoverItem, Handover)
        .join(Handover, Handover.id == HandoverItem.handover_id)
        .where(HandoverItem.corp_id == principal.corp_id, HandoverItem.customer_id.in_(customer_ids))
        .options(selectinload(HandoverItem.taker), selectinload(Handover.handover_staff))
    )
    if not principal.is_admin:
        mine = principal.staff_id or -1
        stmt = stmt.where((HandoverItem.from_staff_id == mine) | (HandoverItem.taker_staff_id == mine))
    return [tuple(row) for row in db.session.execute(stmt.order_by(HandoverItem.id.desc()).limit(limit))]


def group_chats(principal: Principal, handover_id: int, *, page: int, per_page: int, state=None) -> Page:
    """The hand-over's group chats (admins and the departing rep only)."""
    handover = _get_visible(principal, handover_id)
    if not (principal.is_admin or handover.handover_staff_id == principal.staff_id):
        raise NotFound("hand-over")
    stmt = (
        select(HandoverGroupChat)
        .where(HandoverGroupChat.handover_id == handover.id)
        .options(selectinload(HandoverGroupChat.new_owner))
    )
    if state:
        stmt = stmt.where(HandoverGroupChat.state == state)
    return paginate(stmt, page, per_page, HandoverGroupChat.id)


@dataclass
class Preview:
    """A dry run: the plan, nothing stored."""

    plan: Plan

    @property
    def kind(self) -> HandoverKind:
        return self.plan.kind

    @property
    def handover_userid(self) -> str:
        return self.plan.departing.userid

    @property
    def approval_required(self) -> bool:
        return self.plan.approval_required

    @property
    def transfer_message(self) -> str:
        return self.plan.transfer_message

    @property
    def total(self) -> int:
        return len(self.plan.assignments)

    @property
    def no_taker(self) -> int:
        return sum(1 for a in self.plan.assignments if a.taker is None)

    @property
    def takers(self) -> list[dict]:
        return [{"userid": s.userid, "name": s.name, "customers": n} for s, n in self.plan.takers()]

    @property
    def customers(self) -> list[dict]:
        return [
            {
                "customer_id": a.customer_id,
                "external_userid": a.external_userid,
                "name": a.name,
                "takeover_userid": a.taker.userid if a.taker is not None else None,
            }
            for a in self.plan.assignments
        ]

    @property
    def group_chats(self) -> list[dict]:
        return [
            {
                "chat_id": c.chat_id,
                "name": c.name,
                "new_owner_userid": c.new_owner.userid if c.new_owner is not None else None,
                "not_before": c.not_before,
            }
            for c in self.plan.chats
        ]


def dry_run(principal: Principal, request: Request) -> Preview:
    """What :func:`create` would do with ``request``, without storing anything."""
    return Preview(plan_request(principal, request))


def get_policy(principal: Principal) -> Policy:
    """The corp's hand-over policy (admins; the API declares the role)."""
    return policies.load(principal.corp_id)


def set_policy(principal: Principal, changes: dict) -> Policy:
    """Change the corp's hand-over policy (admins). Committed."""
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "your role may not do this")
    result = policies.save(principal.corp_id, changes, principal.actor)
    db.session.commit()
    return result


def current_rep_for(corp_id: int, staff_id: int, customer_id: int) -> int | None:
    """The rep who now has (or is getting) a customer handed over from ``staff_id``; None when
    the customer was not handed over. Cards use it to route a departed rep's visitors."""
    return db.session.scalar(
        select(HandoverItem.taker_staff_id)
        .where(
            HandoverItem.corp_id == corp_id,
            HandoverItem.from_staff_id == staff_id,
            HandoverItem.customer_id == customer_id,
            HandoverItem.state.in_([ItemState.done, *OPEN_ITEM_STATES]),
        )
        .order_by(HandoverItem.id.desc())
        .limit(1)
    )


# -- callbacks (HANDLERS in app/services/event_handlers.py) --------------------------------------
def on_rep_resigned(corp_id: int, fields: dict) -> None:
    """change_contact/delete_user, after the rep is marked resigned: run the departure hooks and
    create the resigned hand-over by the corp's policy (it starts once the event commits)."""
    staff = db.session.scalar(select(Staff).where(Staff.corp_id == corp_id, Staff.userid == fields["UserID"]))
    if staff is None:
        return
    notify_departed(corp_id, staff.id)
    latest = latest_of(corp_id, staff.id)
    # The same departure seen twice (a replayed event, the reconciliation first) is handled once.
    if open_resigned(corp_id, staff.id) is not None or (
        latest is not None
        and latest.kind == HandoverKind.resigned
        and staff.resigned_at is not None
        and latest.created_at >= staff.resigned_at
    ):
        return
    start_resigned(corp_id, staff, HandoverTrigger.callback)


def on_transfer_failed(corp_id: int, fields: dict) -> None:
    """externalcontact transfer_fail: the customer refused (→ refused) or the taker was at their
    limit (→ re-planned to the next rep). UserID names the taker."""
    taker_id = db.session.scalar(select(Staff.id).where(Staff.corp_id == corp_id, Staff.userid == fields["UserID"]))
    if taker_id is None:
        return
    item = db.session.scalar(
        select(HandoverItem)
        .where(
            HandoverItem.corp_id == corp_id,
            HandoverItem.external_userid == fields["ExternalUserID"],
            HandoverItem.taker_staff_id == taker_id,
            HandoverItem.state.in_(IN_FLIGHT_STATES),
        )
        .order_by(HandoverItem.id.desc())
        .limit(1)
        .with_for_update()
    )
    if item is None:
        return  # not one of ours (a transfer made in the WeCom console), or already final
    handover = db.session.get(Handover, item.handover_id)
    ctx = Step(handover)
    reason = fields.get("FailReason") or ""
    if reason == "customer_refused":
        ctx.set_state(item, ItemState.refused, note=reason)
    elif reason == "customer_limit_exceed":
        ctx.mark_full(taker_id)
        ctx.replan(item, errcode=None, note=reason)
    else:
        ctx.set_state(item, ItemState.failed, note=reason or "transfer_fail")
    ctx.save_runtime()
    if ctx.attention:
        audit.record(
            corp_id,
            "system",
            "handover.needs_attention",
            "handover",
            handover.id,
            reason=", ".join(f"{n} {state}" for state, n in sorted(ctx.attention.items())),
            data={"new": dict(ctx.attention)},
        )
    enqueue_after_commit(handover.id)


# -- CLI -----------------------------------------------------------------------------------------
def open_ids(corp_id: int) -> list[int]:
    """Hand-overs with work left (running, or cancelled with customers still in flight)."""
    return list(
        db.session.scalars(
            select(Handover.id)
            .where(
                Handover.corp_id == corp_id,
                Handover.status.in_([HandoverStatus.running, HandoverStatus.cancelled]),
                Handover.next_step_at.is_not(None),
            )
            .order_by(Handover.id)
        )
    )


def run_now(corp_id: int, handover_id: int, force_poll: bool = True) -> StepResult:
    """One step now (the CLI's ``handover run``), by default polling WeCom whatever the backoff says."""
    handover = db.session.get(Handover, handover_id)
    if handover is None or handover.corp_id != corp_id:
        raise NotFound("hand-over")
    return step(handover_id, force_poll=force_poll)


def overview(corp_id: int, handover_id: int | None = None) -> list[HandoverView]:
    """Hand-overs with their counts, for ``handover status`` (newest first; 50 at most)."""
    stmt = select(Handover).where(Handover.corp_id == corp_id).options(selectinload(Handover.handover_staff))
    if handover_id is not None:
        stmt = stmt.where(Handover.id == handover_id)
    rows = list(db.session.scalars(stmt.order_by(Handover.id.desc()).limit(50)))
    return [HandoverView(h, item_counts(h.id), chat_counts(h.id)) for h in rows]
