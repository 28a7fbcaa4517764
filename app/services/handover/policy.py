"""The corp's hand-over policy and the planner that turns it into customer → taker assignments.

Default: the departing rep's customers are spread over the active reps of the same department
(then the department's subtree, then its parent's, up to the whole corp), least-loaded first,
never past a rep's customer cap. A named successor takes them instead when the policy (or the
admin) names one; whoever has no room left is skipped for the next rep. The policy lives in
``Corp.settings["handover"]``; each hand-over keeps a copy of the policy it was planned with.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

from sqlalchemy import func, select

from app.errors import ApiError
from app.extensions import db
from app.models import (
    Corp,
    Customer,
    Department,
    FollowRelation,
    FollowStatus,
    HandoverItem,
    HandoverKind,
    Identity,
    IdentityType,
    Staff,
    StaffStatus,
)
from app.models.handover import OPEN_ITEM_STATES
from app.services import audit

SETTINGS_KEY = "handover"
STRATEGIES = ("spread", "successor")
SCOPES = ("department", "corp")
# First poll a minute after the requests (immediate refusals, lost requests), then slower: the
# customer has 24 h, and transfer_fail callbacks bring refusals in between polls anyway.
DEFAULT_POLL_SECONDS = (60, 300, 900, 1800, 3600)
WECOM_GROUPCHAT_DAILY_LIMIT = 300
LIVE_RELATION = (FollowStatus.active, FollowStatus.pending)


@dataclass(frozen=True)
class Policy:
    """How a departing rep's customers and chats are handed over."""

    strategy: str = "spread"
    # The corp-wide successor (strategy "successor"), and per departing rep (always wins).
    successor_userid: str | None = None
    successors: dict[str, str] = field(default_factory=dict)
    scope: str = "department"
    approval_required: bool = False
    customer_cap: int = 20000
    rep_caps: dict[str, int] = field(default_factory=dict)
    transfer_message: str = ""
    include_group_chats: bool = True
    groupchat_daily_limit: int = WECOM_GROUPCHAT_DAILY_LIMIT
    poll_seconds: tuple[int, ...] = DEFAULT_POLL_SECONDS

    @classmethod
    def from_dict(cls, data: dict | None) -> Policy:
        """The policy stored in ``data``; unknown keys are ignored, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (data or {}).items() if k in known}
        if "poll_seconds" in values:
            values["poll_seconds"] = tuple(values["poll_seconds"])
        return cls(**values)

    def as_dict(self) -> dict:
        """JSON-ready, as stored in Corp.settings and on each hand-over."""
        data = asdict(self)
        data["poll_seconds"] = list(self.poll_seconds)
        return data

    def cap_for(self, userid: str) -> int:
        """How many customers ``userid`` may hold."""
        return int(self.rep_caps.get(userid, self.customer_cap))

    def successor_for(self, departing_userid: str) -> str | None:
        """The named successor of ``departing_userid`` under this policy, if any."""
        if departing_userid in self.successors:
            return self.successors[departing_userid]
        return self.successor_userid if self.strategy == "successor" else None

    def poll_delay(self, attempt: int) -> int:
        """Seconds until the poll after ``attempt`` polls that changed nothing (capped backoff)."""
        return int(self.poll_seconds[min(attempt, len(self.poll_seconds) - 1)])


def load(corp_id: int) -> Policy:
    """The corp's policy (defaults for what it does not set)."""
    corp = db.session.get(Corp, corp_id)
    return Policy.from_dict((corp.settings or {}).get(SETTINGS_KEY))


def save(corp_id: int, changes: dict, actor: str) -> Policy:
    """Apply ``changes`` to the corp's policy after checking that every named rep exists
    (a successor must be active). Audited; committed by the caller."""
    current = load(corp_id)
    merged = Policy.from_dict({**current.as_dict(), **changes})
    errors: dict[str, list[str]] = {}
    named = {merged.successor_userid} if merged.successor_userid else set()
    named |= set(merged.successors.values())
    known = _staff_by_userid(corp_id, named | set(merged.successors) | set(merged.rep_caps))
    for userid in sorted(named):
        staff = known.get(userid)
        if staff is None or staff.status != StaffStatus.active:
            errors.setdefault("successor_userid" if userid == merged.successor_userid else "successors", []).append(
                f"{userid} is not an active rep"
            )
    for userid in sorted(set(merged.successors) | set(merged.rep_caps)):
        if userid not in known:
            errors.setdefault("rep_caps" if userid in merged.rep_caps else "successors", []).append(
                f"unknown rep {userid}"
            )
    if merged.strategy == "successor" and not merged.successor_userid:
        errors.setdefault("successor_userid", []).append("required when strategy is successor")
    if errors:
        raise ApiError(422, "validation_error", "the policy names reps that cannot take customers", errors)
    corp = db.session.get(Corp, corp_id)
    # Reassign (not mutate) the JSON column so the change is seen; other features' keys stay.
    corp.settings = {**(corp.settings or {}), SETTINGS_KEY: merged.as_dict()}
    audit.record(corp_id, actor, "handover.policy_updated", "corp", corp_id, data={"changes": changes})
    return merged


def _staff_by_userid(corp_id: int, userids: Iterable[str]) -> dict[str, Staff]:
    userids = set(userids)
    if not userids:
        return {}
    rows = db.session.scalars(select(Staff).where(Staff.corp_id == corp_id, Staff.userid.in_(userids)))
    return {s.userid: s for s in rows}


def candidate_pool(corp_id: int, departing: Staff, scope: str, exclude_ids: Iterable[int] = ()) -> list[Staff]:
    """Active reps who may take the departing rep's customers: the same department first, then
    the department's subtree, then each ancestor's subtree, finally the whole corp."""
    exclude = set(exclude_ids) | {departing.id}
    active = [
        s
        for s in db.session.scalars(
            select(Staff).where(Staff.corp_id == corp_id, Staff.status == StaffStatus.active).order_by(Staff.id)
        )
        if s.id not in exclude
    ]
    if scope != "department" or departing.department_wecom_id is None:
        return active
    parents = dict(
        db.session.execute(
            select(Department.wecom_id, Department.parent_wecom_id).where(Department.corp_id == corp_id)
        ).all()
    )
    children: dict[int, list[int]] = {}
    for dept, parent in parents.items():
        children.setdefault(parent, []).append(dept)

    def subtree(root: int) -> set[int]:
        found, stack = set(), [root]
        while stack:
            dept = stack.pop()
            if dept not in found:
                found.add(dept)
                stack.extend(children.get(dept, ()))
        return found

    dept = departing.department_wecom_id
    levels = [{dept}]
    seen = set()
    while dept is not None and dept not in seen:
        seen.add(dept)
        levels.append(subtree(dept))
        dept = parents.get(dept)
    for departments in levels:
        pool = [s for s in active if s.department_wecom_id in departments]
        if pool:
            return pool
    return active


def current_loads(corp_id: int, staff_ids: list[int]) -> dict[int, int]:
    """Customers each rep holds now, plus those already on their way to them."""
    loads = dict.fromkeys(staff_ids, 0)
    if not staff_ids:
        return loads
    held = db.session.execute(
        select(FollowRelation.staff_id, func.count())
        .where(
            FollowRelation.corp_id == corp_id,
            FollowRelation.staff_id.in_(staff_ids),
            FollowRelation.status.in_(LIVE_RELATION),
        )
        .group_by(FollowRelation.staff_id)
    ).all()
    coming = db.session.execute(
        select(HandoverItem.taker_staff_id, func.count())
        .where(
            HandoverItem.corp_id == corp_id,
            HandoverItem.taker_staff_id.in_(staff_ids),
            HandoverItem.state.in_(OPEN_ITEM_STATES),
        )
        .group_by(HandoverItem.taker_staff_id)
    ).all()
    for staff_id, count in [*held, *coming]:
        loads[staff_id] += count
    return loads


class Planner:
    """Picks takers: least-loaded first within the pool, never past a rep's cap."""

    def __init__(
        self,
        corp_id: int,
        policy: Policy,
        departing: Staff,
        exclude_ids: Iterable[int] = (),
        named: Iterable[Staff] = (),
    ):
        """``named``: reps chosen by name (successor, explicit takers) whose load counts too."""
        self.policy = policy
        self.pool = candidate_pool(corp_id, departing, policy.scope, exclude_ids)
        self.by_id = {s.id: s for s in self.pool}
        self.loads = current_loads(corp_id, list({*self.by_id, *(s.id for s in named)}))
        self._heap = [(self.loads[s.id], s.id) for s in self.pool]
        heapq.heapify(self._heap)

    def has_room(self, staff: Staff) -> bool:
        """True while the rep is under their cap."""
        return self.loads.get(staff.id, 0) < self.policy.cap_for(staff.userid)

    def take(self, staff: Staff) -> Staff:
        """Count one more customer for the rep; returns the rep."""
        self.loads[staff.id] = self.loads.get(staff.id, 0) + 1
        if staff.id in self.by_id:
            heapq.heappush(self._heap, (self.loads[staff.id], staff.id))
        return staff

    def pick(self, exclude: set[int] = frozenset(), avoid: set[int] = frozenset()) -> Staff | None:
        """The least-loaded rep with room who is not in ``exclude``, preferring reps not in
        ``avoid`` (those who already follow the customer)."""
        set_aside: list[tuple[int, int]] = []
        fallback: tuple[int, int] | None = None
        chosen: Staff | None = None
        while self._heap:
            load, staff_id = heapq.heappop(self._heap)
            if load != self.loads[staff_id]:
                continue  # a stale entry: a fresher one is in the heap
            staff = self.by_id[staff_id]
            if not self.has_room(staff):
                continue  # loads only grow: a full rep stays full, drop it for good
            set_aside.append((load, staff_id))
            if staff_id in exclude:
                continue
            if staff_id in avoid:
                fallback = fallback or (load, staff_id)
                continue
            chosen = staff
            break
        if chosen is None and fallback is not None:
            chosen = self.by_id[fallback[1]]
        for entry in set_aside:
            heapq.heappush(self._heap, entry)
        return self.take(chosen) if chosen is not None else None


@dataclass
class Assignment:
    """One customer and the rep planned to take them (None: nobody has room)."""

    customer_id: int
    external_userid: str
    name: str
    taker: Staff | None


@dataclass
class ChatPlan:
    """One group chat, its new owner and the earliest time it may move."""

    chat_id: str
    name: str
    new_owner: Staff | None
    not_before: datetime


@dataclass
class Plan:
    """A hand-over before it is stored: what a dry run shows and what creation persists."""

    kind: HandoverKind
    departing: Staff
    policy: Policy
    assignments: list[Assignment]
    chats: list[ChatPlan] = field(default_factory=list)
    transfer_message: str = ""
    include_group_chats: bool = True

    @property
    def approval_required(self) -> bool:
        return self.policy.approval_required

    def takers(self) -> list[tuple[Staff, int]]:
        """Each taker with the number of customers planned for them, most first."""
        counts: dict[int, list] = {}
        for a in self.assignments:
            if a.taker is not None:
                counts.setdefault(a.taker.id, [a.taker, 0])[1] += 1
        return sorted(((s, n) for s, n in counts.values()), key=lambda pair: (-pair[1], pair[0].id))


def customers_of(corp_id: int, staff_id: int, customer_ids: Iterable[int] | None = None) -> list[tuple]:
    """(customer_id, external_userid, name) of the rep's live customers, optionally only
    ``customer_ids``, leaving out customers already in flight in another hand-over from them."""
    in_flight = (
        select(HandoverItem.customer_id)
        .where(
            HandoverItem.corp_id == corp_id,
            HandoverItem.from_staff_id == staff_id,
            HandoverItem.state.in_(OPEN_ITEM_STATES),
        )
        .scalar_subquery()
    )
    stmt = (
        select(Customer.id, func.min(Identity.value), Customer.name)
        .join(FollowRelation, FollowRelation.customer_id == Customer.id)
        .join(Identity, (Identity.customer_id == Customer.id) & (Identity.type == IdentityType.external_userid))
        .where(
            FollowRelation.corp_id == corp_id,
            FollowRelation.staff_id == staff_id,
            FollowRelation.status == FollowStatus.active,
            Customer.id.not_in(in_flight),
        )
        .group_by(Customer.id, Customer.name)
        .order_by(Customer.id)
    )
    if customer_ids is not None:
        stmt = stmt.where(Customer.id.in_(list(customer_ids)))
    return [tuple(row) for row in db.session.execute(stmt).all()]


def followers_of(corp_id: int, customer_ids: list[int]) -> dict[int, set[int]]:
    """Reps who already follow each customer: a taker who already has them is a last resort."""
    result: dict[int, set[int]] = {}
    for start in range(0, len(customer_ids), 5000):
        chunk = customer_ids[start : start + 5000]
        rows = db.session.execute(
            select(FollowRelation.customer_id, FollowRelation.staff_id).where(
                FollowRelation.corp_id == corp_id,
                FollowRelation.customer_id.in_(chunk),
                FollowRelation.status.in_(LIVE_RELATION),
            )
        ).all()
        for customer_id, staff_id in rows:
            result.setdefault(customer_id, set()).add(staff_id)
    return result


def assign(
    corp_id: int,
    planner: Planner,
    customers: list[tuple],
    successor: Staff | None = None,
    explicit: dict[int, Staff] | None = None,
) -> list[Assignment]:
    """One assignment per customer: the explicit taker, else the successor while they have
    room, else the least-loaded rep of the pool; None when nobody has room."""
    followers = followers_of(corp_id, [c[0] for c in customers])
    assignments = []
    for customer_id, external_userid, name in customers:
        taker = None
        if explicit is not None:
            taker = planner.take(explicit[customer_id])
        elif successor is not None and planner.has_room(successor):
            taker = planner.take(successor)
        if taker is None:
            taker = planner.pick(avoid=followers.get(customer_id, set()))
        assignments.append(Assignment(customer_id, external_userid, name, taker))
    return assignments
