"""Behaviour alerts: the rules a corp alerts on, each rep's preferences, the alerts raised and
their delivery outbox (one row per alert and recipient, sent alone or inside a digest)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, CorpScoped, Timestamps, utcnow


class AlertKind(enum.StrEnum):
    card_opened = "card_opened"  # a customer opened the rep's card (first visit or returning)
    content_read = "content_read"  # read a content item longer than N seconds
    shared = "shared"  # shared the card or a content item
    share_viewed = "share_viewed"  # someone opened the card or content through a customer's share
    contact_click = "contact_click"  # clicked call, copied the WeChat id, saved the contact, add-on-WeCom
    intent_hot = "intent_hot"  # the customer's intent towards the rep rose to hot
    lost_customer = "lost_customer"  # the customer deleted the rep (del_follow_user)
    welcome_failed = "welcome_failed"  # a welcome message could not be delivered
    transfer_failed = "transfer_failed"  # a customer transfer was refused or the taker is at the limit


class AlertAudience(enum.StrEnum):
    rep = "rep"
    admins = "admins"  # the WeCom userids in the corp's alert settings
    rep_and_admins = "rep_and_admins"


class AlertRule(CorpScoped, Timestamps, Base):
    """What a corp alerts on. The defaults are shipped as rows (``default_of`` = their kind) the
    admin may change or disable but not delete; admins may add more rules of any kind."""

    __tablename__ = "alert_rule"
    __table_args__ = (UniqueConstraint("corp_id", "name"), UniqueConstraint("corp_id", "default_of"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AlertKind] = mapped_column(Enum(AlertKind, native_enum=False, length=24), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # The kind this row is the shipped default of; NULL for a rule an admin added.
    default_of: Mapped[AlertKind | None] = mapped_column(Enum(AlertKind, native_enum=False, length=24))
    enabled: Mapped[bool] = mapped_column(default=True)
    audience: Mapped[AlertAudience] = mapped_column(
        Enum(AlertAudience, native_enum=False, length=16), default=AlertAudience.rep
    )
    # One alert per (rule, customer, rep) within this many seconds.
    window_seconds: Mapped[int] = mapped_column(default=1800)
    # Kind-specific settings (content_read: min_seconds; contact_click: actions; card_opened: min_visits).
    params: Mapped[dict] = mapped_column(default=dict)


class RepAlertPreference(CorpScoped, Timestamps, Base):
    """A rep's own settings: rules they muted and their quiet hours (local time in ``timezone``;
    alerts raised then wait and arrive as one digest when the quiet hours end)."""

    __tablename__ = "rep_alert_preference"
    __table_args__ = (UniqueConstraint("corp_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    muted_rule_ids: Mapped[list] = mapped_column(default=list)
    # Minutes after local midnight; both NULL = no quiet hours. start > end spans midnight.
    quiet_start: Mapped[int | None]
    quiet_end: Mapped[int | None]
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")


class Alert(CorpScoped, Timestamps, Base):
    """One alert: a rule fired for a customer and a rep. The dedupe key (rule, subject = customer
    and rep, time window) is unique, so a duplicated event can never raise a second alert."""

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("corp_id", "dedupe_key"),
        Index("ix_alert_rule_subject_occurred", "rule_id", "subject_key", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL once an admin deleted the rule: the alert stays, as history.
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rule.id", ondelete="SET NULL"), index=True)
    kind: Mapped[AlertKind] = mapped_column(Enum(AlertKind, native_enum=False, length=24))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    # Who the alert is about: "<customer>:<rep>" for rule evaluations, the caller's key for notices.
    subject_key: Mapped[str] = mapped_column(String(128))
    dedupe_key: Mapped[str] = mapped_column(String(192))
    title: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text, default="")
    # A path in the app (the sidebar's customer page) or an absolute URL.
    link: Mapped[str | None] = mapped_column(String(512))
    # {"who": customer name, "what": the short phrase digests use, ...kind-specific facts}.
    data: Mapped[dict] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    deliveries: Mapped[list[AlertDelivery]] = relationship(back_populates="alert", order_by="AlertDelivery.id")


class DeliveryState(enum.StrEnum):
    pending = "pending"  # waiting to go (``not_before``: quiet hours, rate limit, retry backoff)
    sending = "sending"  # claimed by a sender, or part of a batch in flight
    sent = "sent"
    invalid_user = "invalid_user"  # WeCom named the recipient invalid (left, not in the app's scope)
    failed = "failed"
    suppressed = "suppressed"  # not sent on purpose: the rep muted the rule, or left


FINAL_DELIVERY_STATES = (DeliveryState.sent, DeliveryState.invalid_user, DeliveryState.failed, DeliveryState.suppressed)


class AlertDelivery(CorpScoped, Timestamps, Base):
    """The outbox: one alert to one recipient. A sender groups a recipient's due rows into one
    message: the first row is the batch's lead and carries the frozen message (``payload``), the
    others point at it through ``batch_id``. The lead's state is the batch's; a resend after a
    crash or a transient error sends the very same payload with WeCom's duplicate check on."""

    __tablename__ = "alert_delivery"
    __table_args__ = (
        UniqueConstraint("alert_id", "userid"),
        Index("ix_alert_delivery_due", "state", "not_before"),
        Index("ix_alert_delivery_recipient", "corp_id", "userid", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    # The recipient's WeCom userid (what message/send addresses).
    userid: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(8), default="rep")  # rep | admin
    state: Mapped[DeliveryState] = mapped_column(
        Enum(DeliveryState, native_enum=False, length=16), default=DeliveryState.pending
    )
    not_before: Mapped[datetime | None]
    # Why it waits or was suppressed (quiet_hours, rate_limit, retry, muted, resigned).
    reason: Mapped[str | None] = mapped_column(String(32))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("alert_delivery.id"), index=True)
    payload: Mapped[dict | None]
    msgid: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(default=0)
    errcode: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None]
    first_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]

    alert: Mapped[Alert] = relationship(back_populates="deliveries")
