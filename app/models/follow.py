"""Who follows whom: a rep (Staff) and a customer in WeCom, with its remark and tags."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Column, Enum, ForeignKey, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, CorpScoped, Timestamps, utcnow
from .customer import Customer
from .staff import Staff
from .tag import Tag

follow_tag = Table(
    "follow_tag",
    Base.metadata,
    Column("follow_id", ForeignKey("follow_relation.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
)


class FollowStatus(enum.StrEnum):
    active = "active"
    pending = "pending"  # add_half_external_contact: the customer added a skip-verify rep
    deleted = "deleted"
    transferred = "transferred"


class DeletedBy(enum.StrEnum):
    staff = "staff"  # del_external_contact: the rep deleted the customer
    customer = "customer"  # del_follow_user: the customer deleted the rep (a lost customer)
    transfer = "transfer"  # the relation moved to another rep
    sync = "sync"  # gone from WeCom, found by a full sync (the callback was missed)


class FollowRelation(CorpScoped, Timestamps, Base):
    __tablename__ = "follow_relation"
    __table_args__ = (UniqueConstraint("corp_id", "staff_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    status: Mapped[FollowStatus] = mapped_column(
        Enum(FollowStatus, native_enum=False, length=16), default=FollowStatus.active
    )
    # WeCom's add_way (1 QR scan, 3 mini-program...) and the contact way's `state`.
    add_way: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(64), default="")
    remark: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(String(256), default="")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[DeletedBy | None] = mapped_column(Enum(DeletedBy, native_enum=False, length=16))

    staff: Mapped[Staff] = relationship()
    customer: Mapped[Customer] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary=follow_tag, order_by="Tag.id")
