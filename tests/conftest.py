"""Fixtures: a real PostgreSQL schema and a real Redis db index per xdist worker, cleaned
after every test, the app, its client and CLI runner, an API auth helper and a real RQ worker."""

from __future__ import annotations

import os

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db as _db
from app.models import Base
from config import Config

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_HOST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def _worker_number(worker_id: str) -> int:
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))


@pytest.fixture(scope="session")
def pg_schema(worker_id):
    """A schema of its own for this xdist worker, created from the models."""
    schema = f"t_{worker_id}"
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f'SET search_path TO "{schema}"'))
        Base.metadata.create_all(conn)
    engine.dispose()
    return schema


@pytest.fixture(scope="session")
def database_url(pg_schema):
    return f"{PG_URL}?options=-csearch_path%3D{pg_schema}"


@pytest.fixture(scope="session")
def redis_url(worker_id):
    # db 0 is left alone; each xdist worker gets its own index.
    return f"{REDIS_HOST_URL}/{_worker_number(worker_id) + 1}"


@pytest.fixture
def config(database_url, redis_url, tmp_path):
    os.environ["INSTANCE_PATH"] = str(tmp_path / "instance")
    return Config(DATABASE_URL=database_url, REDIS_URL=redis_url, TESTING=True, SECRET_KEY="test-secret-key")


@pytest.fixture
def app(config):
    app = create_app(config)
    with app.app_context():
        yield app
        _db.session.remove()
        with _db.engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        _db.engine.dispose()
    redis_lib.Redis.from_url(config.REDIS_URL).flushdb()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def corp(app):
    from app.services import corps

    return corps.env_corp()


class ApiAuth:
    """Creates users and signs them in; ``headers(role)`` gives ready Authorization headers."""

    def __init__(self, client):
        self.client = client
        self._n = 0

    def user(self, role="admin", staff_id=None, password="correct-horse"):
        from app.models import Role
        from app.services import auth

        self._n += 1
        return auth.create_user(f"{role}{self._n}", password, Role(role), staff_id=staff_id)

    def token(self, username, password="correct-horse"):
        resp = self.client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert resp.status_code == 201, resp.json
        return resp.json["token"]

    def headers(self, role="admin", staff_id=None):
        user = self.user(role, staff_id)
        return {"Authorization": f"Bearer {self.token(user.username)}"}


@pytest.fixture
def api_auth(client, corp):
    return ApiAuth(client)


@pytest.fixture
def admin_headers(api_auth):
    return api_auth.headers("admin")


@pytest.fixture
def run_jobs(app):
    """Drain every queue with a real RQ worker (in this process, inside the app context)."""
    from jobs.worker import build_worker

    def run():
        build_worker(app).work(burst=True)

    return run
