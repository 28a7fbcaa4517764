"""Signing in to the sidebar through WeCom's web OAuth, against the simulator over HTTP."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from app.models import Role, StaffStatus, User
from app.sidebar import oauth


def test_start_sends_the_rep_to_wecoms_oauth_page(sidebar_browser, sim, demo_corp, app):
    """Does /sidebar/oauth/start point at WeCom's page with our corp, agent, callback and a state?"""
    location = sidebar_browser().start()
    assert location.startswith(sim.oauth_base + "?") and location.endswith("#wechat_redirect")
    query = parse_qs(urlsplit(location.split("#")[0]).query)
    assert query["appid"] == [app.config["WECOM_CORP_ID"]]
    assert query["agentid"] == [app.config["WECOM_AGENT_ID"]]
    assert query["scope"] == ["snsapi_base"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["http://localhost/sidebar/oauth/callback"]
    state = query["state"][0]
    assert state.isalnum() and len(state) <= 128


def test_sign_in_round_trip_makes_a_rep_session(sidebar_browser, demo_corp, db):
    """Does a member who signs in through the simulator get a rep session tied to their staff row?"""
    browser = sidebar_browser()
    resp = browser.sign_in("lina")
    assert resp.status_code == 302 and resp.headers["Location"] == "/sidebar"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    me = browser.client.get("/sidebar/v1/me")
    assert me.status_code == 200
    assert me.json["staff_id"] == demo_corp["lina"].id
    user = db.session.get(User, me.json["user_id"])
    assert (user.role, user.staff_id) == (Role.rep, demo_corp["lina"].id)
    # A second sign-in (another device) finds the same account instead of making another.
    other = sidebar_browser()
    other.sign_in("lina")
    assert other.client.get("/sidebar/v1/me").json["user_id"] == user.id
    assert db.session.scalar(select(User).where(User.staff_id == demo_corp["lina"].id).limit(2)) == user


def test_existing_rep_account_is_used(sidebar_browser, demo_corp, api_auth):
    """Does a rep who already has an account (create-admin --role rep) sign in as that account?"""
    user = api_auth.user("rep", staff_id=demo_corp["wangfang"].id)
    browser = sidebar_browser()
    browser.sign_in("wangfang")
    assert browser.client.get("/sidebar/v1/me").json["user_id"] == user.id


def test_next_page_is_kept_but_only_inside_the_sidebar(sidebar_browser, demo_corp):
    """Does sign-in return to the sidebar page that asked for it, and never to another site?"""
    resp = sidebar_browser().sign_in("lina", next_url="/sidebar/customers/42")
    assert resp.headers["Location"] == "/sidebar/customers/42"
    for evil in ("https://evil.example/sidebar", "//evil.example/sidebar", "/console", "/\\evil.example"):
        assert sidebar_browser().sign_in("lina", next_url=evil).headers["Location"] == "/sidebar"


def test_used_code_is_refused(sidebar_browser, demo_corp):
    """Is a code that already signed someone in refused (WeCom's 40029 → 400)?"""
    first = sidebar_browser()
    callback = urlsplit(first.callback_url("lina"))
    assert first.client.get(f"{callback.path}?{callback.query}").status_code == 302
    code = parse_qs(callback.query)["code"][0]
    second = sidebar_browser()
    state = parse_qs(urlsplit(second.start().split("#")[0]).query)["state"][0]
    resp = second.client.get("/sidebar/oauth/callback", query_string={"code": code, "state": state})
    assert resp.status_code == 400
    assert b'data-code="invalid_code"' in resp.data
    assert second.client.get("/sidebar/v1/me").status_code == 401


def test_bad_or_missing_code_is_refused(sidebar_browser, demo_corp):
    """Does a made-up or missing code answer 400 and sign nobody in?"""
    for code in ("not-a-real-code", ""):
        browser = sidebar_browser()
        state = parse_qs(urlsplit(browser.start().split("#")[0]).query)["state"][0]
        resp = browser.client.get("/sidebar/oauth/callback", query_string={"code": code, "state": state})
        assert resp.status_code == 400
        assert browser.client.get("/sidebar/v1/me").status_code == 401


def test_state_from_another_browser_is_refused_and_spends_no_code(sidebar_browser, demo_corp):
    """Can an attacker make a rep's client sign in with the attacker's code (login CSRF)?"""
    attacker = sidebar_browser()
    callback = urlsplit(attacker.callback_url("wangfang"))
    victim = sidebar_browser()
    victim.start()
    resp = victim.client.get(f"{callback.path}?{callback.query}")
    assert resp.status_code == 400 and b'data-code="invalid_state"' in resp.data
    assert victim.client.get("/sidebar/v1/me").status_code == 401
    # The state was checked before the code: its owner can still use it.
    assert attacker.client.get(f"{callback.path}?{callback.query}").status_code == 302


def test_tampered_expired_or_replayed_state_is_refused(sidebar_browser, demo_corp, app):
    """Are a forged, an expired and an already-used state refused?"""
    browser = sidebar_browser()
    callback = urlsplit(browser.callback_url("lina"))
    query = parse_qs(callback.query)
    state, code = query["state"][0], query["code"][0]
    forged = state[:-1] + ("0" if state[-1] != "0" else "1")
    resp = browser.client.get("/sidebar/oauth/callback", query_string={"code": code, "state": forged})
    assert resp.status_code == 400
    # The failed attempt used the pending sign-in up: the genuine state no longer works either.
    assert browser.client.get(f"{callback.path}?{callback.query}").status_code == 400
    nonce = "a" * 32
    with app.test_request_context():
        old = f"{int(time.time()) - oauth.STATE_TTL - 5:010d}"
        expired = old + nonce + oauth._mac(old, nonce)
    with browser.client.session_transaction() as session:
        session[oauth.NONCE_KEY] = {"nonce": nonce, "next": "/sidebar"}
    resp = browser.client.get("/sidebar/oauth/callback", query_string={"code": code, "state": expired})
    assert resp.status_code == 400


def test_resigned_staff_is_refused(sidebar_browser, sim, demo_corp, db, run_jobs):
    """Is a rep who left refused at sign-in, even with a code WeCom still honours?"""
    browser = sidebar_browser()
    state = parse_qs(urlsplit(browser.start().split("#")[0]).query)["state"][0]
    code = sim.control.mint_oauth_code("chenjing")  # minted while still a member
    sim.control.resign_user("chenjing")
    sim.control.flush_callbacks()
    run_jobs()
    db.session.expire_all()
    assert demo_corp["chenjing"].status == StaffStatus.resigned
    resp = browser.client.get("/sidebar/oauth/callback", query_string={"code": code, "state": state})
    assert resp.status_code == 403 and b'data-code="resigned"' in resp.data
    assert browser.client.get("/sidebar/v1/me").status_code == 401


def test_resigning_ends_a_live_session(sidebar_browser, sim, demo_corp, db, run_jobs):
    """Does a signed-in rep lose the sidebar the moment their departure is mirrored?"""
    browser = sidebar_browser()
    browser.sign_in("liuyang")
    assert browser.client.get("/sidebar/v1/me").status_code == 200
    sim.control.resign_user("liuyang")
    sim.control.flush_callbacks()
    run_jobs()
    db.session.expire_all()  # the test shares one session with the app's requests
    resp = browser.client.get("/sidebar/v1/me")
    assert resp.status_code == 401 and resp.json["error"]["code"] == "unauthorized"


def test_member_unknown_here_or_disabled_is_refused(sidebar_browser, sim, demo_corp, db, api_auth):
    """Are a member we have not mirrored and a rep whose account an admin disabled refused?"""
    sim.control.add_user("newbie", name="新人", department=[3])  # no callback: not mirrored yet
    resp = sidebar_browser().sign_in("newbie")
    assert resp.status_code == 403 and b'data-code="unknown_member"' in resp.data
    user = api_auth.user("rep", staff_id=demo_corp["zhangwei"].id)
    user.active = False
    db.session.commit()
    resp = sidebar_browser().sign_in("zhangwei")
    assert resp.status_code == 403 and b'data-code="account_disabled"' in resp.data


def test_wecom_down_at_sign_in_is_a_503(sidebar_browser, sim, demo_corp):
    """When WeCom fails the code exchange, does the rep get a try-again page, not a 500?"""
    browser = sidebar_browser()
    callback = urlsplit(browser.callback_url("lina"))
    sim.control.set_faults(rate=1.0, errors=[-1], paths=["auth/getuserinfo"])
    resp = browser.client.get(f"{callback.path}?{callback.query}")
    assert resp.status_code == 503


def test_signed_out_pages_and_api(app, demo_corp):
    """Signed out: do pages send the rep to sign in and the API answer 401 in the error envelope?"""
    client = app.test_client()
    resp = client.get("/sidebar/customers/7")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/sidebar/oauth/start?next=/sidebar/customers/7"
    resp = client.get("/sidebar/v1/customers/7")
    assert resp.status_code == 401 and resp.json["error"]["code"] == "unauthorized"
    assert client.get("/sidebar/v1/no-such-route").json["error"]["code"] == "not_found"


def test_logout_needs_csrf_and_ends_the_session(sidebar_browser, demo_corp):
    """Does sign-out refuse a request without the CSRF header, and end the session with it?"""
    browser = sidebar_browser()
    browser.sign_in("lina")
    resp = browser.call("POST", "/sidebar/v1/logout", csrf=False)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "csrf_failed"
    assert browser.client.get("/sidebar/v1/me").status_code == 200
    assert browser.call("POST", "/sidebar/v1/logout").status_code == 204
    assert browser.client.get("/sidebar/v1/me").status_code == 401
