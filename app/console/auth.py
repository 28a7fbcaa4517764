"""Console sign-in and sign-out, the ``login_required`` guard and CSRF protection.

The session cookie (signed by Flask, HttpOnly, SameSite=Lax, Secure per config) holds a
server-side session id and the CSRF token; the user behind it is looked up on every request,
so a deactivated user or a signed-out session stops working at once.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for

from app.console import bp
from app.console.forms import load_form
from app.errors import ApiError
from app.schemas.auth import TokenRequestSchema
from app.services import auth
from app.services.auth import Principal

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The form field every console form posts the token in.
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Session keys of the console's own, so signing in or out here leaves the rep sidebar's
# session (same cookie, keys of its own) alone.
SID_KEY = "console_sid"
CSRF_KEY = "console_csrf"


def csrf_token() -> str:
    """This session's CSRF token (made on first use); every console form posts it back."""
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


@bp.context_processor
def _template_globals() -> dict:
    return {"csrf_token": csrf_token, "principal": g.get("principal"), "console_user": g.get("console_user")}


@bp.before_request
def _check_csrf():
    if request.method not in UNSAFE_METHODS:
        return None
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get(CSRF_KEY) or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="The form expired or did not come from this console. Reload the page and try again.")
    return None


@bp.before_request
def _load_user():
    # Always set both: ``g`` can outlive a request (an app context pushed around several).
    user = auth.session_user(session.get(SID_KEY))
    g.console_user = user
    g.principal = auth.principal_of(user) if user is not None else None
    return None


def login_required(roles: tuple[str, ...] = ("admin", "rep")) -> Callable:
    """Guard a console view: signed out → the sign-in page; signed in with another role → 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def guarded(**kwargs):
            if g.get("principal") is None:
                return redirect(url_for("console.login", next=_return_to()))
            if g.principal.role not in roles:
                abort(403)
            return view(**kwargs)

        guarded.console_roles = roles  # the navigation hides links the user's role may not open
        return guarded

    return decorator


def _return_to() -> str | None:
    """Where signing in should lead back to: this page; for a form post (its session ended
    while the form was open), the page the form was on, since a post cannot be replayed as a
    GET (that answered 405). :func:`_safe_next` vets it when it comes back."""
    if request.method not in UNSAFE_METHODS:
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc and referrer.netloc != request.host:
        return None
    return referrer.path + (f"?{referrer.query}" if referrer.query else "") or None


def current_principal() -> Principal:
    """Who is signed in (inside a ``login_required`` view)."""
    return g.principal


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with a console user's username and password."""
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.get("principal") is not None:
            return redirect(next_url)
        return render_template("console/login.html", values={}, errors={}, next_url=next_url)
    data, errors = load_form(TokenRequestSchema)
    status = 422
    if not errors:
        try:
            user = auth.authenticate(data["username"], data["password"], client=request.remote_addr or "")
        except ApiError as exc:  # 401 wrong credentials, 429 rate limited: said in the form
            errors, status = {"_schema": [exc.message]}, exc.status
        else:
            return _sign_in(user, next_url)
    values = {"username": request.form.get("username", "")}
    return render_template("console/login.html", values=values, errors=errors, next_url=next_url), status


def _sign_in(user, next_url: str):
    # A fresh server-side session and CSRF token: nothing from before sign-in carries over.
    auth.close_session(session.get(SID_KEY))
    session.permanent = True
    session[SID_KEY] = auth.open_session(user, int(current_app.permanent_session_lifetime.total_seconds()))
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    return redirect(next_url)


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out: the server-side session ends and the console's keys leave the cookie."""
    auth.close_session(session.pop(SID_KEY, None))
    session.pop(CSRF_KEY, None)
    flash("You are signed out.", "info")
    return redirect(url_for("console.login"))


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/console/") and "\\" not in target:
            return target
    return url_for("console.dashboard")
