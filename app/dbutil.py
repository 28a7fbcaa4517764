"""Dialect-aware statements the ORM does not offer in one portable call."""

from __future__ import annotations

from functools import cache

from flask import current_app
from sqlalchemy import Engine, create_engine
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db


@cache
def _insert_ignoring(model, conflict_columns: tuple[str, ...], dialect_name: str):
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing(index_elements=list(conflict_columns)).returning(model.id)


def autocommit_engine() -> Engine:
    """A small pool of autocommit connections for single-statement hot paths: no BEGIN/COMMIT
    round trips and no reset on check-in (the callback ack spends most of its time there)."""
    engine = current_app.extensions.get("autocommit_engine")
    if engine is None:
        engine = create_engine(db.engine.url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None,
                               pool_recycle=1800)
        current_app.extensions["autocommit_engine"] = engine
    return engine


def insert_ignoring_conflict(model, values: dict, conflict_columns: list[str], autocommit: bool = False) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new row's id, or None when a row with
    the same ``conflict_columns`` exists. Atomic, so concurrent duplicates insert exactly once.

    ``autocommit`` runs it as its own committed statement (one round trip) instead of inside
    the session's transaction."""
    stmt = _insert_ignoring(model, tuple(conflict_columns), db.engine.dialect.name)
    if autocommit:
        with autocommit_engine().connect() as conn:
            return conn.execute(stmt, values).scalar_one_or_none()
    return db.session.connection().execute(stmt, values).scalar_one_or_none()
