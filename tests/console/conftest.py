"""Console fixtures: ``console_login(role)`` signs a fresh user in through the real sign-in
form and answers a :class:`ConsoleSession` (its own client, cookies and CSRF token)."""

from __future__ import annotations

import itertools
import re

import pytest
from werkzeug.datastructures import MultiDict

from app.console.auth import CSRF_KEY

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


class ConsoleSession:
    """A signed-in browser: ``get`` and ``post`` (the CSRF token is added unless given)."""

    def __init__(self, client, user):
        self.client, self.user = client, user

    @property
    def csrf(self) -> str:
        with self.client.session_transaction() as session:
            return session[CSRF_KEY]

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url, data=None, csrf=True, **kwargs):
        """Post a form; ``data`` is a dict or a list of (name, value) pairs (repeated names)."""
        form = MultiDict(data or {})
        if csrf and "csrf_token" not in form:
            form["csrf_token"] = self.csrf
        return self.client.post(url, data=form, **kwargs)


def sign_in(client, username, password=PASSWORD):
    """Post the sign-in form as a browser would (GET for the CSRF token, then POST)."""
    page = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post("/console/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def console_login(app, corp):
    """``console_login(role="admin", staff=None)`` → a signed-in :class:`ConsoleSession`.

    A rep account needs its staff row (``staff=`` a Staff from tests/factories.py).
    """
    from app.models import Role
    from app.services import auth

    def login(role: str = "admin", staff=None, username: str | None = None) -> ConsoleSession:
        username = username or f"console-{role}{next(_seq)}"
        user = auth.create_user(username, PASSWORD, Role(role), staff_id=staff.id if staff is not None else None)
        client = app.test_client()
        resp = sign_in(client, username)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        return ConsoleSession(client, user)

    return login
