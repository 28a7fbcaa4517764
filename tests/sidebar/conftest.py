"""Sidebar fixtures: the simulator's demo corp mirrored into the app, and reps signing in
through the real OAuth round trip (our start → the simulator's authorize page over HTTP → our
callback → auth/getuserinfo at the simulator)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.models import Staff
from app.services import corps, sync


class SidebarBrowser:
    """One browser (its own cookie jar) using the sidebar as a WeCom member."""

    def __init__(self, app, sim):
        self.client = app.test_client()
        self.sim = sim

    def start(self, next_url: str | None = None) -> str:
        """GET /sidebar/oauth/start: where it sends the browser (WeCom's page)."""
        resp = self.client.get("/sidebar/oauth/start", query_string={"next": next_url} if next_url else None)
        assert resp.status_code == 302, resp.data
        return resp.headers["Location"]

    def callback_url(self, userid: str, next_url: str | None = None) -> str:
        """Start a sign-in and let the simulator's authorize page answer for ``userid``."""
        return self.sim.control.authorize(self.start(next_url), userid)

    def sign_in(self, userid: str, next_url: str | None = None):
        """The whole round trip; answers our callback's response."""
        target = urlsplit(self.callback_url(userid, next_url))
        return self.client.get(f"{target.path}?{target.query}")

    def csrf(self) -> str:
        resp = self.client.get("/sidebar/v1/me")
        assert resp.status_code == 200, resp.json
        return resp.json["csrf_token"]

    def call(self, method: str, path: str, json=None, csrf: bool = True):
        """A sidebar call; state-changing ones carry the session's CSRF header."""
        headers = {"X-CSRF-Token": self.csrf()} if csrf and method not in ("GET", "HEAD") else {}
        return self.client.open(path, method=method, json=json, headers=headers)


@pytest.fixture
def demo_corp(sim, corp, db):
    """The simulator's demo corp (reps zhangwei, lina, wangfang, liuyang, chenjing) synced in."""
    sim.control.seed_demo()
    sync.run(corps.env_corp_id())
    return {s.userid: s for s in db.session.scalars(select(Staff))}


@pytest.fixture
def sidebar_browser(app, sim):
    return lambda: SidebarBrowser(app, sim)
