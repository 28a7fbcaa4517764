"""The application factory."""

from __future__ import annotations

import os

from flask import Flask

from config import Config


def create_app(config: Config | None = None) -> Flask:
    """Build the app from ``config`` (default: ``Config.from_env()``) and bind every subsystem."""
    config = config or Config.from_env()
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None)
    app.config.from_mapping(config.as_flask_config())
    app.config["SQLALCHEMY_DATABASE_URI"] = config.DATABASE_URL or _default_sqlite(app)
    # No pre-ping: it costs a round trip on every request (a third of a callback's ack time);
    # recycling connections bounds staleness instead, and a dead one fails one request.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_recycle": 1800}
    app.json.sort_keys = False

    from app import cli, errors, health, landing, logs, wecom_callback
    from app.api import init_app as init_api
    from app.console import init_app as init_console
    from app.extensions import db, migrate, redis_store
    from app.services import corps, hooks
    from app.sidebar import init_app as init_sidebar
    from jobs import init_app as init_jobs
    from miniprogram_api import init_app as init_miniprogram

    logs.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    redis_store.init_app(app)
    init_jobs(app)
    errors.init_app(app)
    health.init_app(app)
    init_api(app)
    init_console(app)
    init_sidebar(app)
    init_miniprogram(app)
    wecom_callback.init_app(app)
    landing.init_app(app)
    cli.init_app(app)
    corps.init_app(app)
    hooks.install()
    return app


def _default_sqlite(app: Flask) -> str:
    os.makedirs(app.instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "scrm.db")
