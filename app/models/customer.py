"""The OneID customer and the identities that resolve to it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, CorpScoped, Timestamps, utcnow


class Customer(CorpScoped, Timestamps, Base):
    """One person, however many WeCom, WeChat, mini-program or phone identities they have."""

    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    avatar: Mapped[str] = mapped_column(String(512), default="")
    gender: Mapped[int] = mapped_column(default=0)
    corp_name: Mapped[str] = mapped_column(String(128), default="")
    # Channel attribution (labels of the contact codes that brought them).
    first_channel: Mapped[str | None] = mapped_column(String(64), index=True)
    last_channel: Mapped[str | None] = mapped_column(String(64), index=True)
    # Set when this customer was merged into another: old ids keep resolving to the survivor.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)

    identities: Mapped[list[Identity]] = relationship(back_populates="customer", order_by="Identity.id")

    def __repr__(self) -> str:
        return f"<Customer {self.id} {self.name!r}>"


class IdentityType(enum.StrEnum):
    external_userid = "external_userid"
    unionid = "unionid"
    mp_openid = "mp_openid"
    oa_openid = "oa_openid"
    phone = "phone"
    pending_id = "pending_id"


class Identity(CorpScoped, Base):
    """(type, value) is unique per corp: one identity points at exactly one customer."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("corp_id", "type", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    type: Mapped[IdentityType] = mapped_column(Enum(IdentityType, native_enum=False, length=32))
    value: Mapped[str] = mapped_column(String(128))
    # Where we learnt it (wecom_callback, sync, mp_login, mp_phone, idconvert, admin...).
    source: Mapped[str] = mapped_column(String(32), default="")
    verified: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities")
