"""Corp tags (企业标签), mirrored from WeCom."""

from __future__ import annotations

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CorpScoped, Timestamps


class Tag(CorpScoped, Timestamps, Base):
    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("corp_id", "wecom_tag_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wecom_tag_id: Mapped[str] = mapped_column(String(64))
    group_name: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(64))
