"""Departments and staff (the reps), mirrored from WeCom's address book."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CorpScoped, Timestamps


class Department(CorpScoped, Timestamps, Base):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("corp_id", "wecom_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wecom_id: Mapped[int]
    name: Mapped[str] = mapped_column(String(128))
    # WeCom's parent department id (0 for the root); kept as WeCom's id, not a FK, because
    # WeCom sends children before parents and may delete a parent first.
    parent_wecom_id: Mapped[int] = mapped_column(default=0)


class StaffStatus(enum.StrEnum):
    active = "active"
    resigned = "resigned"


class Staff(CorpScoped, Timestamps, Base):
    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("corp_id", "userid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    userid: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128), default="")
    # Main department, as WeCom's department id.
    department_wecom_id: Mapped[int | None]
    status: Mapped[StaffStatus] = mapped_column(
        Enum(StaffStatus, native_enum=False, length=16), default=StaffStatus.active, index=True
    )
    resigned_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<Staff {self.id} {self.userid}>"
