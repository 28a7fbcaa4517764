"""Customer group chats (客户群), mirrored from WeCom."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CorpScoped, Timestamps


class GroupChatStatus(enum.StrEnum):
    active = "active"
    dismissed = "dismissed"


class GroupChat(CorpScoped, Timestamps, Base):
    __tablename__ = "group_chat"
    __table_args__ = (UniqueConstraint("corp_id", "chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128), default="")
    # The owner's WeCom userid: an owner may be unknown to us until the next staff sync.
    owner_userid: Mapped[str] = mapped_column(String(64), default="", index=True)
    notice: Mapped[str] = mapped_column(String(512), default="")
    member_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[GroupChatStatus] = mapped_column(
        Enum(GroupChatStatus, native_enum=False, length=16), default=GroupChatStatus.active
    )
    dismissed_at: Mapped[datetime | None]
