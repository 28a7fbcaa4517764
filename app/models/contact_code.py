"""Channel contact codes (渠道活码): the code, its rep pool, every assignment it made, every
customer it brought and the welcome message each of them was owed."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, CorpScoped, Timestamps, utcnow
from .staff import Staff


class CodeMode(enum.StrEnum):
    # One multi-person WeCom contact way whose user list we keep equal to "reps available now".
    wecom = "wecom"
    # Our landing link picks the rep and answers that rep's own single-person way.
    routed = "routed"


class CodeStrategy(enum.StrEnum):
    weighted_round_robin = "weighted_round_robin"
    least_loaded = "least_loaded"
    random = "random"


class CodeStatus(enum.StrEnum):
    active = "active"
    paused = "paused"
    archived = "archived"


class ContactCode(CorpScoped, Timestamps, Base):
    __tablename__ = "contact_code"
    # WeCom hands the way's `state` back in add_external_contact: it must name one code.
    __table_args__ = (UniqueConstraint("corp_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # The channel (source) label customers are attributed to.
    channel: Mapped[str] = mapped_column(String(64), index=True)
    mode: Mapped[CodeMode] = mapped_column(Enum(CodeMode, native_enum=False, length=16), default=CodeMode.wecom)
    strategy: Mapped[CodeStrategy] = mapped_column(
        Enum(CodeStrategy, native_enum=False, length=32), default=CodeStrategy.weighted_round_robin
    )
    status: Mapped[CodeStatus] = mapped_column(
        Enum(CodeStatus, native_enum=False, length=16), default=CodeStatus.active, index=True
    )
    state: Mapped[str] = mapped_column(String(30))
    skip_verify: Mapped[bool] = mapped_column(default=True)
    expires_at: Mapped[datetime | None]
    # {"timezone", "slots": [{"weekdays", "start", "end"}], "exceptions": [{"date", "slots"}]};
    # None = always open.
    schedule: Mapped[dict | None]
    # {"text", "attachments": [...]} as the admin wrote it (placeholders unrendered); None = none.
    welcome: Mapped[dict | None]
    # [{"group_name", "name"}] as asked, and the WeCom tag ids they resolved to.
    tags: Mapped[list] = mapped_column(default=list)
    tag_ids: Mapped[list] = mapped_column(default=list)
    # wecom mode: the multi-person way, and the user list WeCom holds for it right now.
    config_id: Mapped[str | None] = mapped_column(String(64))
    qr_code: Mapped[str | None] = mapped_column(String(512))
    wecom_users: Mapped[list] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    paused_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]

    members: Mapped[list[ContactCodeMember]] = relationship(
        back_populates="code", order_by="ContactCodeMember.position", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<ContactCode {self.id} {self.state}>"


class ContactCodeMember(CorpScoped, Timestamps, Base):
    """A rep in a code's pool (or a backup), with weight and caps."""

    __tablename__ = "contact_code_member"
    __table_args__ = (UniqueConstraint("code_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("contact_code.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    # Pool order: ties in every strategy go to the earlier member.
    position: Mapped[int] = mapped_column(default=0)
    weight: Mapped[int] = mapped_column(default=1)
    daily_cap: Mapped[int | None]
    total_cap: Mapped[int | None]
    # Backups take customers only when nobody in the pool is available.
    backup: Mapped[bool] = mapped_column(default=False)
    paused: Mapped[bool] = mapped_column(default=False)
    # routed mode: this rep's own single-person way for this code (created once, reused).
    config_id: Mapped[str | None] = mapped_column(String(64))
    qr_code: Mapped[str | None] = mapped_column(String(512))

    code: Mapped[ContactCode] = relationship(back_populates="members")
    staff: Mapped[Staff] = relationship()


class AssignmentKind(enum.StrEnum):
    routed = "routed"  # our landing link picked the rep
    wecom = "wecom"  # WeCom picked the rep from the list we set; recorded when the add arrives


class ContactCodeAssignment(CorpScoped, Base):
    """One decision and why it was made (strategy, weight, counts and caps, schedule, backup)."""

    __tablename__ = "contact_code_assignment"
    __table_args__ = (Index("ix_contact_code_assignment_code_day", "code_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # routed decisions are logged in Redis first and written here in bulk; their own id makes
    # that write idempotent. None for wecom picks (written directly).
    decision_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("contact_code.id", ondelete="CASCADE"))
    # None when nobody was available.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    kind: Mapped[AssignmentKind] = mapped_column(Enum(AssignmentKind, native_enum=False, length=16))
    backup: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[dict] = mapped_column(default=dict)
    # The day in the code's timezone (daily caps and stats count by it).
    day: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactCodeAdd(CorpScoped, Base):
    """A customer added a rep through the code (one add_external_contact carrying its state)."""

    __tablename__ = "contact_code_add"
    # The same add seen twice (an event processed again) must count once.
    __table_args__ = (
        UniqueConstraint("code_id", "staff_id", "external_userid", "added_at"),
        Index("ix_contact_code_add_code_day", "code_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("contact_code.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    external_userid: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime]
    day: Mapped[date]
    # Auto-tagging: none (the code has no tags) | pending | applied | failed.
    tag_status: Mapped[str] = mapped_column(String(16), default="none")
    tag_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WelcomeStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    expired = "expired"  # 41050, or the 20 s window closed before we could send
    already_chatting = "already_chatting"  # 41051
    failed = "failed"


class ContactCodeWelcome(CorpScoped, Timestamps, Base):
    """The welcome outbox: one row per WelcomeCode, so a code is used at most once."""

    __tablename__ = "contact_code_welcome"
    __table_args__ = (UniqueConstraint("corp_id", "welcome_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("contact_code.id", ondelete="CASCADE"), index=True)
    add_id: Mapped[int] = mapped_column(ForeignKey("contact_code_add.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    welcome_code: Mapped[str] = mapped_column(String(128))
    # The rendered send_welcome_msg body, minus the code.
    payload: Mapped[dict]
    status: Mapped[WelcomeStatus] = mapped_column(
        Enum(WelcomeStatus, native_enum=False, length=20), default=WelcomeStatus.pending, index=True
    )
    attempts: Mapped[int] = mapped_column(default=0)
    errcode: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # WeCom's 20 s: past this the code is dead and sending is pointless.
    deadline: Mapped[datetime]
    # A transient failure's backoff: not sent again before this.
    not_before: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
