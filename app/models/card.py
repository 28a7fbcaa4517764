"""Smart business cards (智能名片): a rep's card, its content, the mini-program sessions that
open it, the raw events they send, the visits, shares and intent scores derived from them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, CorpScoped, Timestamps
from .staff import Staff

# BIGINT ids for the high-volume tables; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class ContactWayStatus(enum.StrEnum):
    pending = "pending"  # the WeCom contact way is being created (or retried)
    ready = "ready"
    failed = "failed"  # a permanent WeCom refusal; see contact_way_error
    released = "released"  # the card was archived and its contact way deleted


class Card(CorpScoped, Timestamps, Base):
    """One rep's card. It carries the rep's own mini-program contact way (type 1, scene 1) whose
    ``state`` names the card, so a customer who adds the rep from it is attributed to it."""

    __tablename__ = "card"
    __table_args__ = (UniqueConstraint("corp_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(64), default="")
    company: Mapped[str] = mapped_column(String(128), default="")
    avatar: Mapped[str] = mapped_column(String(512), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(128), default="")
    wechat: Mapped[str] = mapped_column(String(64), default="")
    intro: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    contact_way_config_id: Mapped[str | None] = mapped_column(String(64))
    contact_way_state: Mapped[str] = mapped_column(String(30), default="")
    contact_way_status: Mapped[ContactWayStatus] = mapped_column(
        Enum(ContactWayStatus, native_enum=False, length=16), default=ContactWayStatus.pending
    )
    contact_way_error: Mapped[str | None] = mapped_column(Text)
    contact_way_attempts: Mapped[int] = mapped_column(default=0)

    staff: Mapped[Staff] = relationship()

    def __repr__(self) -> str:
        return f"<Card {self.id} staff={self.staff_id}>"


class ContentKind(enum.StrEnum):
    article = "article"
    product = "product"
    file = "file"
    video = "video"


class ContentItem(CorpScoped, Timestamps, Base):
    """A piece of content on a card. Archived, never deleted: events and visits point at it."""

    __tablename__ = "card_content"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    kind: Mapped[ContentKind] = mapped_column(Enum(ContentKind, native_enum=False, length=16))
    title: Mapped[str] = mapped_column(String(128))
    cover: Mapped[str] = mapped_column(String(512), default="")
    url: Mapped[str] = mapped_column(String(1024), default="")
    position: Mapped[int] = mapped_column(default=0)
    archived_at: Mapped[datetime | None]


class SessionKind(enum.StrEnum):
    device = "device"  # an anonymous visitor before wx.login; claimed by a customer on login
    user = "user"  # a logged-in WeChat user (openid resolved on the server)


class MpSession(CorpScoped, Timestamps, Base):
    """A mini-program session. Only the SHA-256 of its opaque token is stored. WeChat's
    session_key is never stored nor sent anywhere: nothing here needs to decrypt user data."""

    __tablename__ = "mp_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[SessionKind] = mapped_column(Enum(SessionKind, native_enum=False, length=16))
    # A user session's customer; a device session's once claimed at login (NULL until then).
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]


class CardEventType(enum.StrEnum):
    card_view = "card_view"
    content_view = "content_view"
    heartbeat = "heartbeat"
    leave = "leave"
    share = "share"
    click_phone = "click_phone"
    copy_wechat = "copy_wechat"
    save_contact = "save_contact"
    add_wecom = "add_wecom"


class CardEvent(CorpScoped, Timestamps, Base):
    """One raw event from the mini-program, as acknowledged; unique per (session, client id),
    which is what makes a retried batch harmless."""

    __tablename__ = "card_event"
    __table_args__ = (
        UniqueConstraint("session_id", "client_event_id"),
        Index("ix_card_event_card_occurred", "card_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("mp_session.id"))
    client_event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[CardEventType] = mapped_column(Enum(CardEventType, native_enum=False, length=16))
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"))
    content_id: Mapped[int | None] = mapped_column(ForeignKey("card_content.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    # For a share: the share it created; for a view: the share the visitor arrived through.
    share_code: Mapped[str | None] = mapped_column(String(32))
    # The client's time, clamped to the server's receive time (a clock ahead cannot lead).
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]


class CardVisit(CorpScoped, Timestamps, Base):
    """A visit: one session's continuous stay on a card (content_id NULL) or on one content
    item. Dwell is the sum of gaps between its events, each gap capped, so a lost ``leave``
    only ends the visit at its last heartbeat."""

    __tablename__ = "card_visit"
    __table_args__ = (
        Index("ix_card_visit_card_started", "card_id", "started_at"),
        Index("ix_card_visit_session_card", "session_id", "card_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"))
    content_id: Mapped[int | None] = mapped_column(ForeignKey("card_content.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("mp_session.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    via_share_code: Mapped[str | None] = mapped_column(ForeignKey("card_share.code"), index=True)
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    dwell_seconds: Mapped[float] = mapped_column(default=0.0)


class CardShare(CorpScoped, Timestamps, Base):
    """A share of a card or content item. ``parent_code`` is the share through which the sharer
    had arrived: the shares of one target form its forward tree, ``depth`` 1 at the root."""

    __tablename__ = "card_share"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    content_id: Mapped[int | None] = mapped_column(ForeignKey("card_content.id"))
    session_id: Mapped[int] = mapped_column(ForeignKey("mp_session.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("card_share.code"))
    depth: Mapped[int] = mapped_column(default=1)
    shared_at: Mapped[datetime]


class IntentLevel(enum.StrEnum):
    cold = "cold"
    warm = "warm"
    hot = "hot"


class IntentScore(CorpScoped, Timestamps, Base):
    """A customer's intent towards one rep: ``score`` as of ``as_of``; it decays exponentially
    from there (the corp's half-life), so the current value is computed on read."""

    __tablename__ = "intent_score"
    __table_args__ = (UniqueConstraint("corp_id", "customer_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    score: Mapped[float] = mapped_column(default=0.0)
    as_of: Mapped[datetime]
    level: Mapped[IntentLevel] = mapped_column(
        Enum(IntentLevel, native_enum=False, length=8), default=IntentLevel.cold, index=True
    )
    level_since: Mapped[datetime]
    last_event_at: Mapped[datetime]
    events: Mapped[int] = mapped_column(default=0)


class IntentLevelChange(CorpScoped, Timestamps, Base):
    """Each time a customer's level towards a rep moves, and what moved it (an event type, or
    ``decay``). The alerts feature reacts to the rises."""

    __tablename__ = "intent_level_change"
    __table_args__ = (Index("ix_intent_level_change_customer_staff", "customer_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    from_level: Mapped[IntentLevel] = mapped_column(Enum(IntentLevel, native_enum=False, length=8))
    to_level: Mapped[IntentLevel] = mapped_column(Enum(IntentLevel, native_enum=False, length=8))
    score: Mapped[float]
    cause: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(index=True)
