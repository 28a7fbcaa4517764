"""Dialect-aware statements the ORM does not offer in one portable call."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db


def insert_ignoring_conflict(model, values: dict, conflict_columns: list[str]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new row's id, or None when a row with
    the same ``conflict_columns`` exists. Atomic, so concurrent duplicates insert exactly once."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict_columns)
        .returning(model.id)
    )
    return db.session.execute(stmt).scalar_one_or_none()
