from app import create_app
from config import Config


def test_config_is_applied(app):
    """Does create_app apply the Config it is given?"""
    assert app.config["TESTING"] is True
    assert app.config["SECRET_KEY"] == "test-secret-key"
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


def test_zero_setup_default_runs_on_sqlite_and_embedded_redis(tmp_path, monkeypatch):
    """With no DATABASE_URL and no REDIS_URL, does the app come up on SQLite and an embedded Redis?"""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    app = create_app(Config())
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/scrm.db"
    with app.app_context():
        from app.extensions import db

        db.create_all()
        resp = app.test_client().get("/readyz")
        assert resp.status_code == 200, resp.json
        assert resp.json["checks"] == {"database": "ok", "redis": "ok"}
        db.engine.dispose()
    app.extensions["redis"].shutdown()


def test_healthz(client):
    """Does /healthz answer while the process lives?"""
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_reports_an_unreachable_redis(database_url, tmp_path, monkeypatch):
    """Does /readyz answer 503 and name Redis when Redis cannot be reached?"""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    app = create_app(Config(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:1/0"))
    with app.app_context():
        resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["checks"]["database"] == "ok"
    assert resp.json["checks"]["redis"].startswith("error")
