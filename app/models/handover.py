"""Hand-over of a rep's customers and group chats (离职继承 / 在职继承).

A Handover is a plan (customer → takeover rep) and its execution. Each customer is one
HandoverItem whose state moves planned → requested → waiting → done | refused | taker_at_limit |
not_allowed | failed (| cancelled), with every step kept in ``history``. An item becomes
``requested`` in the database *before* the WeCom call that requests it, so a crash never leaves
a customer requested without a trace, and a resumed run asks WeCom instead of asking twice.
Group chats are HandoverGroupChat rows, scheduled per day (WeCom moves ≤300 a day per owner).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, CorpScoped, Timestamps
from .customer import Customer
from .staff import Staff


class HandoverKind(enum.StrEnum):
    resigned = "resigned"  # 离职继承: the rep left; resigned/transfer_customer, no message
    on_the_job = "on_the_job"  # 在职继承: the rep stays; transfer_customer, with a message


class HandoverStatus(enum.StrEnum):
    pending_approval = "pending_approval"
    running = "running"
    finished = "finished"  # every item and chat is final
    cancelled = "cancelled"  # no new requests; what WeCom already has is still followed to the end


class HandoverTrigger(enum.StrEnum):
    callback = "callback"  # change_contact/delete_user
    admin = "admin"
    reconcile = "reconcile"  # get_unassigned_list found customers the callbacks missed


class ItemState(enum.StrEnum):
    planned = "planned"
    requested = "requested"  # stored before the WeCom call; the call may or may not have landed
    waiting = "waiting"  # WeCom accepted it; the customer has 24 h to refuse
    done = "done"
    refused = "refused"
    taker_at_limit = "taker_at_limit"  # final only when no other rep had room
    not_allowed = "not_allowed"  # 40128: transferred twice in 90 days
    failed = "failed"
    cancelled = "cancelled"


OPEN_ITEM_STATES = (ItemState.planned, ItemState.requested, ItemState.waiting)
IN_FLIGHT_STATES = (ItemState.requested, ItemState.waiting)
FINAL_ITEM_STATES = tuple(s for s in ItemState if s not in OPEN_ITEM_STATES)
# Final states an admin should look at.
ATTENTION_STATES = (ItemState.refused, ItemState.taker_at_limit, ItemState.not_allowed, ItemState.failed)


class ChatState(enum.StrEnum):
    planned = "planned"
    requested = "requested"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


OPEN_CHAT_STATES = (ChatState.planned, ChatState.requested)


class Handover(CorpScoped, Timestamps, Base):
    __tablename__ = "handover"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[HandoverKind] = mapped_column(Enum(HandoverKind, native_enum=False, length=16))
    status: Mapped[HandoverStatus] = mapped_column(
        Enum(HandoverStatus, native_enum=False, length=24), default=HandoverStatus.running, index=True
    )
    trigger: Mapped[HandoverTrigger] = mapped_column(Enum(HandoverTrigger, native_enum=False, length=16))
    handover_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    # The policy as it was when the plan was made (re-plans follow it, not later edits).
    policy: Mapped[dict] = mapped_column(default=dict)
    transfer_message: Mapped[str] = mapped_column(String(200), default="")
    include_group_chats: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    approval_required: Mapped[bool] = mapped_column(default=False)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # When the next transfer_result poll is due, and its backoff step.
    next_poll_at: Mapped[datetime | None]
    poll_attempt: Mapped[int] = mapped_column(default=0)
    # When the next step is due (poll, a chat day, a retry); the sweeper re-enqueues overdue ones.
    next_step_at: Mapped[datetime | None] = mapped_column(index=True)
    # Resume cursors per (handover, takeover) pair, takers WeCom called full, chat discovery.
    runtime: Mapped[dict] = mapped_column(default=dict)
    # One step at a time: a worker holds the lease while it runs; a dead worker's lease expires.
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(32))

    handover_staff: Mapped[Staff] = relationship()


class HandoverItem(CorpScoped, Timestamps, Base):
    """One customer of a hand-over. Writers (a step, a transfer_fail callback, a cancel) read
    the rows they change ``FOR UPDATE``, so none overwrites a state it has not seen."""

    __tablename__ = "handover_item"
    __table_args__ = (
        UniqueConstraint("handover_id", "customer_id"),
        # A customer is in flight in at most one hand-over from a given rep.
        Index(
            "uq_handover_item_in_flight",
            "corp_id",
            "from_staff_id",
            "customer_id",
            unique=True,
            postgresql_where=text("state IN ('planned', 'requested', 'waiting')"),
            sqlite_where=text("state IN ('planned', 'requested', 'waiting')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    handover_id: Mapped[int] = mapped_column(ForeignKey("handover.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    external_userid: Mapped[str] = mapped_column(String(64), index=True)
    from_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    taker_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    state: Mapped[ItemState] = mapped_column(
        Enum(ItemState, native_enum=False, length=16), default=ItemState.planned, index=True
    )
    # The request (one WeCom call, ≤100 customers) that carried this item.
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    errcode: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(String(128))
    requested_at: Mapped[datetime | None]
    takeover_at: Mapped[datetime | None]  # WeCom's takeover_time: due (waiting) or actual (done)
    finished_at: Mapped[datetime | None]
    # [{at, state, taker, taker_id, errcode, note}], oldest first.
    history: Mapped[list] = mapped_column(default=list)

    customer: Mapped[Customer] = relationship()
    taker: Mapped[Staff | None] = relationship(foreign_keys=[taker_staff_id])


class HandoverGroupChat(CorpScoped, Timestamps, Base):
    """One group chat of a hand-over, due on a given day (WeCom's per-owner daily limit)."""

    __tablename__ = "handover_group_chat"
    __table_args__ = (UniqueConstraint("handover_id", "chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    handover_id: Mapped[int] = mapped_column(ForeignKey("handover.id", ondelete="CASCADE"), index=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128), default="")
    from_userid: Mapped[str] = mapped_column(String(64), index=True)
    new_owner_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    state: Mapped[ChatState] = mapped_column(
        Enum(ChatState, native_enum=False, length=16), default=ChatState.planned, index=True
    )
    not_before: Mapped[datetime]
    errcode: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(String(128))
    requested_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    history: Mapped[list] = mapped_column(default=list)

    new_owner: Mapped[Staff | None] = relationship()
