"""The sidebar's sign-in session, its guards and CSRF protection.

The session is Flask's signed cookie holding a server-side session id (``auth.open_session``,
the console's mechanism: signing out ends it on the server) and the CSRF token, under keys of
their own so the console and the sidebar never sign each other in or out.

Cookie flags (config): HttpOnly (no script reads it) and SameSite=Lax. Lax fits the WeCom
client: the chat toolbar opens our page as the top-level document of the client's webview, not
as a third-party iframe, so every request the page makes is same-site; and the OAuth round
trip comes back from open.weixin.qq.com as a top-level GET navigation, which Lax lets the cookie
ride on. SameSite=None would only add cross-site sends (needing Secure, and widening CSRF).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps

from flask import current_app, g, redirect, request, session, url_for

from app.errors import ApiError
from app.models import User
from app.services import auth, rep_signin
from app.services.auth import Principal
from app.sidebar import bp

SID_KEY = "sidebar_sid"
CSRF_KEY = "sidebar_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def sign_in(user: User) -> None:
    """Start a fresh sidebar session for ``user``: a new server-side id and a new CSRF token."""
    auth.close_session(session.get(SID_KEY))
    session.permanent = True
    lifetime = int(current_app.permanent_session_lifetime.total_seconds())
    session[SID_KEY] = auth.open_session(user, lifetime)
    session[CSRF_KEY] = secrets.token_urlsafe(32)


def sign_out() -> None:
    auth.close_session(session.pop(SID_KEY, None))
    session.pop(CSRF_KEY, None)


def csrf_token() -> str:
    """This session's CSRF token; the page sends it back in the ``X-CSRF-Token`` header."""
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def current_principal() -> Principal | None:
    """The signed-in rep (loaded once per request), or None."""
    if "sidebar_principal" not in g:
        g.sidebar_principal = rep_signin.principal_for_session(session.get(SID_KEY))
    return g.sidebar_principal


@bp.before_request
def _forget_principal():
    # Tests (and any caller holding one app context across requests) share ``g``: never let a
    # previous request's rep answer for this one.
    g.pop("sidebar_principal", None)


@bp.before_request
def _check_csrf():
    if request.method not in UNSAFE_METHODS:
        return None
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token") or ""
    expected = session.get(CSRF_KEY) or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(403, "csrf_failed", f"missing or wrong {CSRF_HEADER}; reload the sidebar")
    return None


@bp.context_processor
def _template_globals() -> dict:
    return {"csrf_token": csrf_token}


def api_login_required(view: Callable) -> Callable:
    """Guard a /sidebar/v1 route: 401 unless a rep is signed in; the view gets ``principal``."""

    @wraps(view)
    def guarded(**kwargs):
        principal = current_principal()
        if principal is None:
            raise ApiError(401, "unauthorized", "sign in through WeCom first")
        return view(principal, **kwargs)

    return guarded


def page_login_required(view: Callable) -> Callable:
    """Guard a sidebar page: signed out → WeCom's sign-in, coming back to this page."""

    @wraps(view)
    def guarded(**kwargs):
        principal = current_principal()
        if principal is None:
            return redirect(url_for("sidebar.oauth_start", next=request.full_path.rstrip("?")))
        return view(principal, **kwargs)

    return guarded
