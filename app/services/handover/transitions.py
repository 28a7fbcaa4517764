"""Item state changes, their history and audit, re-planning, and moving a follow relation
to its taker once WeCom completes a transfer.

Every state change goes through :meth:`Step.set_state`, which appends to the item's history; a
final state is also written to the audit log against the customer, so the OneID timeline shows
"handed from A to B" (or "refused B") next to everything else the customer did.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Integer, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import (
    DeletedBy,
    FollowRelation,
    FollowStatus,
    Handover,
    HandoverItem,
    ItemState,
    Staff,
    follow_tag,
    utcnow,
)
from app.models.handover import ATTENTION_STATES, FINAL_ITEM_STATES
from app.services import audit
from app.services.handover.policy import Planner, Policy

# Called with (corp_id, item, taker userid, note) when a customer's transfer ends in a state
# an admin must look at (refused, taker at limit, not allowed, failed), inside the step's
# transaction: hooks must not commit. The alerts feature tells the admins here.
on_needs_attention: list[Callable[[int, HandoverItem, str | None, str | None], None]] = []

if TYPE_CHECKING:
    from app.services.handover.execute import Lease

# WeCom shows a transferred customer as added by assignment (管理员/负责人分配).
ADD_WAY_ASSIGNED = 202
LIVE = (str(FollowStatus.active), str(FollowStatus.pending))


def history_entry(
    state: ItemState | str, taker_userid: str | None, taker_id: int | None, errcode: int | None, note: str | None
) -> dict:
    """One line of an item's (or chat's) history."""
    return {
        "at": utcnow().isoformat(),
        "state": str(state),
        "taker": taker_userid,
        "taker_id": taker_id,
        "errcode": errcode,
        "note": note,
    }


class Step:
    """What one run over a hand-over shares: the handover, its lease, a userid cache, the
    planner (built on first re-plan) and what changed."""

    def __init__(self, handover: Handover, lease: Lease | None = None):
        self.handover_id = handover.id
        self.corp_id = handover.corp_id
        self.kind = handover.kind
        self.departing_id = handover.handover_staff_id
        self.departing_userid = handover.handover_staff.userid
        self.policy = Policy.from_dict(handover.policy)
        self.lease = lease
        self.changed = 0
        self.attention: Counter[str] = Counter()
        self.runtime = copy.deepcopy(handover.runtime or {})
        self._userids: dict[int, str] = {self.departing_id: self.departing_userid}
        self._planner: Planner | None = None

    @property
    def handover(self) -> Handover:
        # Looked up again after every commit: the status may have changed (cancel, approve).
        return db.session.get(Handover, self.handover_id)

    @property
    def full_takers(self) -> set[int]:
        return set(self.runtime.get("full_takers", []))

    def userid(self, staff_id: int | None) -> str | None:
        """A rep's WeCom userid (cached for the step)."""
        if staff_id is None:
            return None
        if staff_id not in self._userids:
            self._userids[staff_id] = db.session.scalar(select(Staff.userid).where(Staff.id == staff_id))
        return self._userids[staff_id]

    def checkpoint(self) -> None:
        """Commit what was done so far (and keep the lease alive)."""
        if self.lease is not None:
            self.lease.extend()
        self.save_runtime()
        db.session.commit()

    def save_runtime(self) -> None:
        """Write the cursors and full takers back to the hand-over when they changed."""
        handover = self.handover
        if handover.runtime != self.runtime:
            handover.runtime = copy.deepcopy(self.runtime)

    def set_state(
        self,
        item: HandoverItem,
        state: ItemState,
        *,
        errcode: int | None = None,
        note: str | None = None,
        record: bool = True,
    ) -> None:
        """Move ``item`` to ``state``, appending to its history; final states are audited."""
        if item.state != state:
            self.changed += 1
        item.state = state
        item.errcode = errcode
        item.reason = note[:128] if note else None
        taker = self.userid(item.taker_staff_id)
        item.history = [*(item.history or []), history_entry(state, taker, item.taker_staff_id, errcode, note)]
        if state not in FINAL_ITEM_STATES or not record:
            return
        item.finished_at = utcnow()
        if state in ATTENTION_STATES:
            self.attention[str(state)] += 1
            for hook in on_needs_attention:
                hook(self.corp_id, item, taker, note)
        audit.record(
            self.corp_id,
            "system",
            f"handover.customer.{state}",
            "customer",
            item.customer_id,
            reason=note,
            data={
                "handover_id": self.handover_id,
                "kind": str(self.kind),
                "from": self.departing_userid,
                "to": taker,
                "errcode": errcode,
            },
        )

    def planner(self) -> Planner:
        """The re-planning planner: the hand-over's policy, minus the takers WeCom called full."""
        if self._planner is None:
            departing = db.session.get(Staff, self.departing_id)
            self._planner = Planner(self.corp_id, self.policy, departing, exclude_ids=self.full_takers)
            for staff in self._planner.pool:
                self._userids[staff.id] = staff.userid
        return self._planner

    def mark_full(self, staff_id: int) -> None:
        """WeCom says this taker can take no more: no further customer of this hand-over goes to them."""
        full = self.full_takers
        if staff_id not in full:
            self.runtime["full_takers"] = sorted(full | {staff_id})
            if self._planner is not None:
                self._planner.loads[staff_id] = 10**9

    def replan(self, item: HandoverItem, *, errcode: int | None, note: str) -> bool:
        """The taker cannot take ``item`` (at their limit, gone): give it to the next rep who
        has room and has not had it yet. False when nobody is left (the item stays final)."""
        tried = {e.get("taker_id") for e in item.history or [] if e.get("taker_id")} | self.full_takers
        if item.taker_staff_id:
            tried.add(item.taker_staff_id)
        taker = self.planner().pick(exclude=tried)
        if taker is None:
            self.set_state(item, ItemState.taker_at_limit, errcode=errcode, note=f"{note}; no other rep has room")
            return False
        self.set_state(item, ItemState.taker_at_limit, errcode=errcode, note=note, record=False)
        item.taker_staff_id = taker.id
        item.batch_id = None
        self.set_state(item, ItemState.planned, note=f"re-planned to {taker.userid}")
        return True

    def complete(self, done: list[tuple[HandoverItem, datetime]]) -> None:
        """WeCom completed these transfers: the items are done and each relation moves."""
        if not done:
            return
        moves = []
        for item, at in done:
            item.takeover_at = at
            self.set_state(item, ItemState.done, note="transferred")
            moves.append((item.customer_id, item.from_staff_id, item.taker_staff_id, at))
        move_relations(self.corp_id, moves)


def move_relations(corp_id: int, moves: list[tuple[int, int, int, datetime]]) -> None:
    """(customer, from rep, taker, when): the old relation ends as transferred (kept, never
    deleted) and the taker's becomes active with the remark, description, channel state and
    tags of the old one (merged into the taker's when they already followed the customer).

    Set-based (a page of results is up to 100 moves, a hand-over tens of thousands). A relation
    another writer (the sync, a callback) creates meanwhile is merged into, not duplicated."""
    db.session.flush()  # the items' new states go first
    conflicted = _move_relations(corp_id, moves)
    if conflicted:
        _move_relations(corp_id, conflicted)


def _relations(corp_id: int, moves: list[tuple[int, int, int, datetime]]) -> tuple[dict, dict[int, list[int]]]:
    rel = FollowRelation.__table__
    customer_ids = list({m[0] for m in moves})
    staff_ids = list({m[1] for m in moves} | {m[2] for m in moves})
    found = {
        (row.staff_id, row.customer_id): row
        for row in db.session.execute(
            select(
                rel.c.id,
                rel.c.staff_id,
                rel.c.customer_id,
                rel.c.status,
                rel.c.deleted_by,
                rel.c.remark,
                rel.c.description,
                rel.c.state,
            ).where(rel.c.corp_id == corp_id, rel.c.customer_id.in_(customer_ids), rel.c.staff_id.in_(staff_ids))
        )
    }
    tags: dict[int, list[int]] = {}
    if found:
        for follow_id, tag_id in db.session.execute(
            select(follow_tag.c.follow_id, follow_tag.c.tag_id)
            .where(follow_tag.c.follow_id.in_([r.id for r in found.values()]))
            .order_by(follow_tag.c.tag_id)
        ):
            tags.setdefault(follow_id, []).append(tag_id)
    return found, tags


def _move_relations(corp_id: int, moves: list[tuple[int, int, int, datetime]]) -> list:
    """One pass; returns the moves whose new relation appeared under us (to merge into)."""
    rel = FollowRelation.__table__
    found, tags = _relations(corp_id, moves)
    now = utcnow()
    closes, updates, inserts, tag_rows = [], [], [], []
    carried_by_pair: dict[tuple[int, int], list[int]] = {}
    for customer_id, from_id, taker_id, at in moves:
        old = found.get((from_id, customer_id))
        new = found.get((taker_id, customer_id))
        # A sync that ran before we heard of the transfer closed the old relation as "gone".
        if old is not None and (str(old.status) in LIVE or str(old.deleted_by) == str(DeletedBy.sync)):
            closes.append({"b_id": old.id, "b_at": at})
        carried = tags.get(old.id, []) if old is not None else []
        if new is None:
            inserts.append(
                {
                    "corp_id": corp_id,
                    "staff_id": taker_id,
                    "customer_id": customer_id,
                    "status": FollowStatus.active,
                    "add_way": ADD_WAY_ASSIGNED,
                    "state": old.state if old is not None else "",
                    "remark": old.remark if old is not None else "",
                    "description": old.description if old is not None else "",
                    "added_at": at,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            carried_by_pair[(taker_id, customer_id)] = carried
            continue
        if str(new.status) != str(FollowStatus.active):  # the taker had the customer once: start afresh
            source = old if old is not None else new
            values = {"remark": source.remark, "description": source.description, "state": source.state}
            updates.append({"b_id": new.id, "b_at": at, "b_add_way": ADD_WAY_ASSIGNED, **_prefixed(values)})
            keep: list[int] = []
        else:  # the taker already has the customer: keep theirs, fill the gaps
            values = {
                "remark": new.remark or (old.remark if old else ""),
                "description": new.description or (old.description if old else ""),
                "state": new.state or (old.state if old else ""),
            }
            updates.append({"b_id": new.id, "b_at": None, "b_add_way": None, **_prefixed(values)})
            keep = tags.get(new.id, [])
        tag_rows += [{"follow_id": new.id, "tag_id": t} for t in carried if t not in keep]
    if closes:
        db.session.execute(
            update(rel)
            .where(rel.c.id == bindparam("b_id"))
            .values(
                status=FollowStatus.transferred,
                deleted_by=DeletedBy.transfer,
                deleted_at=bindparam("b_at"),
                updated_at=now,
            ),
            closes,
        )
    if updates:
        db.session.execute(
            update(rel)
            .where(rel.c.id == bindparam("b_id"))
            .values(
                status=FollowStatus.active,
                deleted_at=None,
                deleted_by=None,
                remark=bindparam("b_remark"),
                description=bindparam("b_description"),
                state=bindparam("b_state"),
                add_way=func.coalesce(bindparam("b_add_way", type_=Integer), rel.c.add_way),
                added_at=func.coalesce(bindparam("b_at", type_=rel.c.added_at.type), rel.c.added_at),
                updated_at=now,
            ),
            updates,
        )
    conflicted = []
    if inserts:
        dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(rel)
            .on_conflict_do_nothing(index_elements=["corp_id", "staff_id", "customer_id"])
            .returning(rel.c.id, rel.c.staff_id, rel.c.customer_id)
        )
        created = {(r.staff_id, r.customer_id): r.id for r in db.session.execute(stmt, inserts)}
        for pair, carried in carried_by_pair.items():
            if pair in created:
                tag_rows += [{"follow_id": created[pair], "tag_id": t} for t in carried]
        conflicted = [m for m in moves if (m[2], m[0]) in carried_by_pair and (m[2], m[0]) not in created]
    if tag_rows:
        db.session.execute(insert(follow_tag), tag_rows)
    return conflicted


def _prefixed(values: dict) -> dict:
    return {f"b_{k}": v for k, v in values.items()}
