"""The corp's tags (mirrored from WeCom), for pickers: the sidebar's tag editor."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Tag
from app.services.auth import Principal


def corp_tags(principal: Principal) -> list[Tag]:
    """Every corp tag of the caller's corp, by group then name (corp tags are not per rep)."""
    return list(
        db.session.scalars(
            select(Tag).where(Tag.corp_id == principal.corp_id).order_by(Tag.group_name, Tag.name, Tag.id)
        )
    )
