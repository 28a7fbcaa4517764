"""The migrations: one head, and on SQLite and PostgreSQL they build exactly the models' schema."""

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db
from app.models import Base
from config import Config
from tests.conftest import NAMESPACE, PG_URL

MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "migrations")


def test_single_head():
    """Does Alembic have exactly one head?"""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS)
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1


def _upgrade_and_diff(database_url: str, tmp_path) -> list:
    os.environ["INSTANCE_PATH"] = str(tmp_path)
    app = create_app(Config(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:6379/0"))
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        db.engine.dispose()
    return diff


def test_migrations_match_models_on_sqlite(tmp_path):
    """On SQLite, do the migrations build the schema the models declare?"""
    assert _upgrade_and_diff(f"sqlite:///{tmp_path}/m.db", tmp_path) == []


@pytest.fixture
def empty_pg_schema(worker_id):
    schema = f"m_{NAMESPACE}{worker_id}"
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def test_migrations_match_models_on_postgresql(empty_pg_schema, tmp_path):
    """On PostgreSQL, do the migrations build the schema the models declare?"""
    assert _upgrade_and_diff(empty_pg_schema, tmp_path) == []
