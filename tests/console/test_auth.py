"""Console sign-in, sign-out, CSRF, cookie flags and roles."""

from __future__ import annotations

import re

from app.models import User
from app.services import auth
from tests import factories
from tests.console.conftest import PASSWORD, sign_in


def test_sign_in_opens_the_dashboard(app, corp, console_login):
    """Does a good username and password sign in and show who is signed in?"""
    session = console_login("admin", username="alice")
    resp = session.get("/console/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'data-testid="signed-in-user">alice<' in html
    assert 'data-testid="nav-contact-codes"' in html


def test_signed_out_visitor_is_sent_to_sign_in(client):
    """Does a page without a session redirect to the sign-in page, keeping where to return?"""
    resp = client.get("/console/staff")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/console/login?next=/console/staff")


def test_a_form_posted_after_the_session_ended_returns_to_its_page(app, corp, console_login):
    """When the session ends while a form is open, does posting it lead to sign-in and back to
    the form's page (not to the post's URL, which a GET answers 405), changing nothing?"""
    from app.console.auth import SID_KEY
    from app.extensions import db
    from app.models import AlertRule

    admin = console_login("admin")
    with admin.client.session_transaction() as session:
        auth.close_session(session[SID_KEY])  # the server-side session is gone, the cookie stays
    before = db.session.query(AlertRule).count()
    resp = admin.post("/console/alert-rules/new", {"name": "late"},
                      headers={"Referer": "http://localhost/console/alert-rules?page=2"})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/console/login?next=/console/alert-rules?page%3D2"
    assert db.session.query(AlertRule).count() == before
    page = admin.get(resp.headers["Location"]).get_data(as_text=True)  # the sign-in form, as a browser follows
    form = {name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1) for name in ("csrf_token", "next")}
    resp = admin.client.post("/console/login", data={**form, "username": admin.user.username, "password": PASSWORD})
    assert resp.headers["Location"] == "/console/alert-rules?page=2"
    assert admin.get(resp.headers["Location"]).status_code == 200
    # Without a referrer from this console, it falls back to the dashboard.
    with admin.client.session_transaction() as session:
        auth.close_session(session[SID_KEY])
    resp = admin.post("/console/alert-rules/new", {"name": "late"}, headers={"Referer": "https://evil.example/x"})
    assert resp.headers["Location"] == "/console/login"


def test_wrong_password_shows_an_error_in_the_form(app, corp, client):
    """Does a wrong password re-render the form with the error and no session?"""
    auth.create_user("bob", PASSWORD)
    resp = sign_in(client, "bob", "wrong-password")
    assert resp.status_code == 401
    assert 'data-testid="form-errors"' in resp.get_data(as_text=True)
    assert "wrong username or password" in resp.get_data(as_text=True)
    assert client.get("/console/").status_code == 302


def test_missing_fields_are_field_errors(app, corp, client):
    """Does an empty form answer 422 with an error beside each empty field?"""
    page = client.get("/console/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    resp = client.post("/console/login", data={"csrf_token": token})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'data-testid="error-username"' in html and 'data-testid="error-password"' in html


def test_repeated_failures_are_rate_limited(app, corp, client):
    """After too many failures, is even the right password refused with 429 and a clear message?"""
    auth.create_user("carol", PASSWORD)
    for _ in range(auth.MAX_FAILED_LOGINS):
        assert sign_in(client, "carol", "nope-nope").status_code == 401
    resp = sign_in(client, "carol", PASSWORD)
    assert resp.status_code == 429
    assert "too many failed sign-ins" in resp.get_data(as_text=True)
    assert client.get("/console/").status_code == 302


def test_console_and_api_share_the_limiter(app, corp, client):
    """Do failures at the API count against console sign-in (one credential check)?"""
    auth.create_user("dave", PASSWORD)
    for _ in range(auth.MAX_FAILED_LOGINS):
        client.post("/api/v1/auth/token", json={"username": "dave", "password": "nope-nope"})
    assert sign_in(client, "dave", PASSWORD).status_code == 429


def test_post_without_csrf_token_is_refused_and_changes_nothing(app, corp, console_login):
    """Is a console POST without the CSRF token refused with 400, leaving the session signed in?"""
    session = console_login("admin")
    resp = session.post("/console/logout", csrf=False)
    assert resp.status_code == 400
    assert session.get("/console/").status_code == 200


def test_post_with_a_wrong_csrf_token_is_refused(app, corp, console_login):
    """Is a forged CSRF token refused with 400?"""
    session = console_login("admin")
    assert session.post("/console/logout", {"csrf_token": "forged"}).status_code == 400
    assert session.get("/console/").status_code == 200


def test_sign_in_itself_needs_the_csrf_token(app, corp, client):
    """Is a sign-in post without the form's token refused (no login CSRF)?"""
    auth.create_user("erin", PASSWORD)
    resp = client.post("/console/login", data={"username": "erin", "password": PASSWORD})
    assert resp.status_code == 400
    assert client.get("/console/").status_code == 302


def test_sign_out_ends_the_session_on_the_server(app, corp, console_login):
    """After signing out, does a copy of the old cookie stop working too?"""
    session = console_login("admin")
    with session.client.session_transaction() as s:
        stolen = dict(s)
    assert session.post("/console/logout").status_code == 302
    assert session.get("/console/").status_code == 302
    replay = app.test_client()
    with replay.session_transaction() as s:
        s.update(stolen)
    assert replay.get("/console/").status_code == 302


def test_session_cookie_flags(app, corp, client):
    """Is the session cookie HttpOnly, SameSite=Lax, Secure by default and time-limited?"""
    auth.create_user("frank", PASSWORD)
    resp = sign_in(client, "frank")
    cookie = next(v for v in resp.headers.getlist("Set-Cookie") if v.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie
    assert "Expires=" in cookie


def test_deactivated_user_is_signed_out(app, corp, db, console_login):
    """Does a user switched off after sign-in lose the console on the next request?"""
    session = console_login("admin")
    db.session.get(User, session.user.id).active = False
    db.session.commit()
    assert session.get("/console/").status_code == 302


def test_next_never_leaves_the_console(app, corp, client):
    """Is a ``next`` pointing at another site ignored after sign-in?"""
    auth.create_user("gina", PASSWORD)
    page = client.get("/console/login?next=//evil.example/x").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    resp = client.post(
        "/console/login",
        data={"username": "gina", "password": PASSWORD, "csrf_token": token, "next": "https://evil.example/"},
    )
    assert resp.headers["Location"] == "/console/"


def test_rep_signs_in_as_a_rep(app, corp, console_login):
    """Does a rep account sign in and show the rep role?"""
    rep = factories.staff(corp)
    session = console_login("rep", staff=rep)
    html = session.get("/console/").get_data(as_text=True)
    assert 'data-testid="signed-in-role">rep<' in html


def test_secure_cookie_setting_is_read_from_the_environment():
    """Does SESSION_COOKIE_SECURE=false (the local http run) turn the Secure flag off, and a typo fail loudly?"""
    import pytest

    from config import Config

    assert Config.from_env({}).as_flask_config()["SESSION_COOKIE_SECURE"] is True
    assert Config.from_env({"SESSION_COOKIE_SECURE": "false"}).as_flask_config()["SESSION_COOKIE_SECURE"] is False
    with pytest.raises(ValueError, match="SESSION_COOKIE_SECURE"):
        Config.from_env({"SESSION_COOKIE_SECURE": "maybe"})


def test_insecure_setting_drops_the_secure_flag(app, corp, client):
    """With SESSION_COOKIE_SECURE off, is the cookie still HttpOnly and Lax but without Secure?"""
    app.config["SESSION_COOKIE_SECURE"] = False
    auth.create_user("hana", PASSWORD)
    cookie = next(v for v in sign_in(client, "hana").headers.getlist("Set-Cookie") if v.startswith("session="))
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_console_sign_in_and_out_leave_other_session_keys_alone(app, corp, client):
    """Do console sign-in and sign-out keep what else the cookie holds (the rep sidebar's session)?"""
    auth.create_user("ivan", PASSWORD)
    with client.session_transaction() as s:
        s["sidebar_sid"] = "the sidebar's"
    sign_in(client, "ivan")
    page = client.get("/console/").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    with client.session_transaction() as s:
        assert s["sidebar_sid"] == "the sidebar's"
        assert "console_sid" not in s
