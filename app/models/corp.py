"""The corp (企业): the tenant every business row belongs to."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Timestamps


class Corp(Timestamps, Base):
    __tablename__ = "corp"

    id: Mapped[int] = mapped_column(primary_key=True)
    wecom_corp_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    # Per-corp settings that later features read (alert defaults, hand-over policy...).
    settings: Mapped[dict] = mapped_column(default=dict)

    def __repr__(self) -> str:
        return f"<Corp {self.id} {self.wecom_corp_id}>"
