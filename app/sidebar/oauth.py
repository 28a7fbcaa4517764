"""Sign-in through WeCom's web OAuth: /sidebar/oauth/start → WeCom → /sidebar/oauth/callback.

The ``state`` WeCom carries round is a signed nonce: ``<timestamp><nonce><hmac>``, hex and
digits only (WeCom allows a-zA-Z0-9, ≤ 128 bytes). The nonce is also kept in this browser's
session, so a callback only signs in the browser that started it (no login CSRF: nobody can
make a rep's client sign in as someone else with a code of theirs), and it works once. The
HMAC and the timestamp refuse forged or stale states before any code is spent.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import quote, urlencode, urlsplit

from flask import current_app, redirect, request, session, url_for

from app.errors import ApiError
from app.services import rep_signin
from app.sidebar import bp
from app.sidebar.session import sign_in, sign_out

NONCE_KEY = "sidebar_oauth"
STATE_TTL = 600  # seconds a sign-in may take between start and callback
_TS_LEN, _NONCE_LEN, _MAC_LEN = 10, 32, 32


def _mac(timestamp: str, nonce: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"sidebar-oauth|{timestamp}|{nonce}".encode(), hashlib.sha256).hexdigest()[:_MAC_LEN]


def make_state(nonce: str) -> str:
    timestamp = f"{int(time.time()):0{_TS_LEN}d}"
    return timestamp + nonce + _mac(timestamp, nonce)


def check_state(state: str, expected_nonce: str | None) -> bool:
    """True for a state this app signed, under STATE_TTL old, carrying this browser's nonce."""
    if len(state) != _TS_LEN + _NONCE_LEN + _MAC_LEN or not state.isascii() or not state.isalnum():
        return False
    timestamp, nonce, mac = state[:_TS_LEN], state[_TS_LEN:-_MAC_LEN], state[-_MAC_LEN:]
    if not timestamp.isdigit() or not 0 <= time.time() - int(timestamp) <= STATE_TTL:
        return False
    if not hmac.compare_digest(mac, _mac(timestamp, nonce)):
        return False
    return bool(expected_nonce) and hmac.compare_digest(nonce, expected_nonce)


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a sidebar path of this site only (no open redirect)."""
    default = url_for("sidebar.toolbar")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or not parts.path.startswith("/sidebar"):
        return default
    return target


def authorize_url(state: str) -> str:
    """WeCom's OAuth page for this app (snsapi_base: the userid is all the sidebar needs)."""
    cfg = current_app.config
    params = {
        "appid": cfg["WECOM_CORP_ID"],
        "redirect_uri": url_for("sidebar.oauth_callback", _external=True),
        "response_type": "code",
        "scope": "snsapi_base",
        "state": state,
        "agentid": cfg["WECOM_AGENT_ID"],
    }
    # wechatpy's oauth.authorize_url has the production host built in and no agentid, which
    # WeCom wants so the sign-in counts against this app; the parameter order is WeCom's.
    return f"{cfg['WECOM_OAUTH_BASE']}?{urlencode(params, quote_via=quote)}#wechat_redirect"


@bp.get("/oauth/start")
def oauth_start():
    """Send the rep to WeCom's sign-in; ``next`` is the sidebar page to come back to."""
    nonce = secrets.token_hex(_NONCE_LEN // 2)
    session[NONCE_KEY] = {"nonce": nonce, "next": safe_next(request.args.get("next"))}
    return redirect(authorize_url(make_state(nonce)))


@bp.get("/oauth/callback")
def oauth_callback():
    """WeCom's redirect back: check the state, exchange the code, sign the rep in."""
    pending = session.pop(NONCE_KEY, None) or {}
    if not check_state(request.args.get("state", ""), pending.get("nonce")):
        raise ApiError(400, "invalid_state", "this sign-in was not started here or took too long; open it again")
    code = request.args.get("code", "")
    if not code:
        raise ApiError(400, "invalid_code", "WeCom sent no sign-in code")
    user = rep_signin.user_for_code(code)
    sign_in(user)
    return redirect(pending.get("next") or url_for("sidebar.toolbar"))


@bp.post("/v1/logout")
def logout():
    """Sign out of the sidebar (the server-side session ends)."""
    sign_out()
    return "", 204
