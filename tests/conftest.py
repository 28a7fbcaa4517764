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
# Two test runs on one machine at once (say, two developers' checkouts) keep apart by setting
# TEST_NAMESPACE (schema names) and TEST_REDIS_DB_BASE (first Redis db index) differently.
NAMESPACE = os.environ.get("TEST_NAMESPACE", "")
REDIS_DB_BASE = int(os.environ.get("TEST_REDIS_DB_BASE", "1"))


def _worker_number(worker_id: str) -> int:
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))


@pytest.fixture(scope="session")
def pg_schema(worker_id):
    """A schema of its own for this xdist worker, created from the models."""
    schema = f"t_{NAMESPACE}{worker_id}"
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
    return f"{REDIS_HOST_URL}/{REDIS_DB_BASE + _worker_number(worker_id)}"


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
        if "autocommit_engine" in app.extensions:
            app.extensions["autocommit_engine"].dispose()
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


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on a free port (for the simulator's callbacks)."""
    import threading

    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def sim(app, live_server):
    """A WeCom simulator sharing the app's corp, secrets and callback keys, sending its
    callbacks to the live app; the app's client is pointed at it."""
    from wecom.simulator import SimConfig, SimulatorServer

    cfg = app.config
    server = SimulatorServer(SimConfig(
        corp_id=cfg["WECOM_CORP_ID"], agent_id=cfg["WECOM_AGENT_ID"], agent_secret=cfg["WECOM_AGENT_SECRET"],
        contact_secret=cfg["WECOM_CONTACT_SECRET"], token=cfg["WECOM_TOKEN"],
        encoding_aes_key=cfg["WECOM_ENCODING_AES_KEY"], miniprogram_appid=cfg["MINIPROGRAM_APPID"],
        miniprogram_secret=cfg["MINIPROGRAM_SECRET"], callback_url=f"{live_server}/wecom/callback",
        callback_retry_pause=0.05,
    )).start()
    cfg["WECOM_API_BASE"] = server.wecom_api_base
    cfg["WECHAT_API_BASE"] = server.wechat_api_base
    cfg["WECOM_OAUTH_BASE"] = server.oauth_base
    yield server
    server.stop()


@pytest.fixture
def worker_process(app, tmp_path):
    """Start a real `python -m jobs.worker --burst` process on this test's database, Redis and
    WeCom base (for tests that kill a worker mid-job); it is killed at teardown if still alive."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    started = []

    def start() -> subprocess.Popen:
        env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
               "REDIS_URL": app.config["REDIS_URL"], "WECOM_API_BASE": app.config["WECOM_API_BASE"],
               "INSTANCE_PATH": str(tmp_path), "LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen([sys.executable, "-m", "jobs.worker", "--burst"], cwd=root, env=env,  # noqa: S603
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
