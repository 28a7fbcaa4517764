"""The callback event store: every WeCom callback, decrypted, deduplicated, with its fate."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CorpScoped, Timestamps, utcnow


class EventStatus(enum.StrEnum):
    received = "received"  # stored, waiting for (or between) processing attempts
    processing = "processing"
    done = "done"
    ignored = "ignored"  # a known event no handler acts on
    failed = "failed"


class CallbackEvent(CorpScoped, Timestamps, Base):
    __tablename__ = "callback_event"
    # WeCom retries a callback up to 3 times and events carry no id: the dedupe key is the
    # only thing that makes a retry have no second effect.
    __table_args__ = (UniqueConstraint("corp_id", "dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64), default="")
    change_type: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict]
    status: Mapped[EventStatus] = mapped_column(
        Enum(EventStatus, native_enum=False, length=16), default=EventStatus.received, index=True
    )
    # "high" for events that carry a 20-second welcome code, else "default": drained separately.
    priority: Mapped[str] = mapped_column(String(8), default="default")
    attempts: Mapped[int] = mapped_column(default=0)
    # A retry waits for its backoff: the event is not claimed before this time.
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
