"""Users, passwords and bearer tokens for the admin API."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.errors import ApiError
from app.extensions import db, get_redis
from app.models import ApiToken, Role, Staff, User, utcnow
from app.services import audit, corps

# Failed sign-ins allowed per username and client address before a cool-down.
MAX_FAILED_LOGINS = 10
LOGIN_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Principal:
    """Who is calling: the authorization decisions in services take this, not a request."""

    user_id: int
    corp_id: int
    role: Role
    staff_id: int | None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


def create_user(username: str, password: str, role: Role = Role.admin, staff_id: int | None = None) -> User:
    """Create a console/API user in the env corp; refuses a taken username."""
    if db.session.scalar(select(User).where(User.username == username)):
        raise ApiError(409, "conflict", f"user {username!r} exists", {"username": ["already taken"]})
    if len(password) < 8:
        raise ApiError(422, "validation_error", "password too short", {"password": ["at least 8 characters"]})
    corp = corps.env_corp()
    user = User(
        corp_id=corp.id, username=username, password_hash=generate_password_hash(password), role=role, staff_id=staff_id
    )
    db.session.add(user)
    db.session.flush()
    audit.record(corp.id, "system", "user.create", "user", user.id, data={"username": username, "role": role})
    db.session.commit()
    return user


def rep_account(staff: Staff) -> User:
    """The rep user account a staff member acts as when signed in through WeCom (the sidebar).

    An existing rep account linked to the staff member (``create-admin --role rep``) is used as
    it is, disabled or not (the caller checks ``active``: an admin's lock-out holds). Otherwise
    one is made on the first sign-in: role rep, username ``wecom-staff-<id>``, a random password
    nobody knows (WeCom is how they sign in). Commits when it creates one."""
    stmt = (
        select(User)
        .where(User.corp_id == staff.corp_id, User.staff_id == staff.id, User.role == Role.rep)
        .order_by(User.id)
        .limit(1)
    )
    user = db.session.scalar(stmt)
    if user is not None:
        return user
    username = f"wecom-staff-{staff.id}"
    try:
        with db.session.begin_nested():
            user = User(
                corp_id=staff.corp_id,
                username=username,
                password_hash=generate_password_hash(secrets.token_urlsafe(32)),
                role=Role.rep,
                staff_id=staff.id,
            )
            db.session.add(user)
            db.session.flush()
            audit.record(
                staff.corp_id,
                "system",
                "user.create",
                "user",
                user.id,
                data={"username": username, "role": Role.rep, "via": "wecom_oauth"},
            )
    except IntegrityError:  # a concurrent first sign-in of the same rep made it
        return db.session.scalar(stmt)
    db.session.commit()
    return user


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(username: str, password: str, client: str) -> User:
    """The active user with these credentials; rate limited per username and client address.

    The API's token exchange and the console's sign-in both come through here, so they share
    one limiter: 429 ``too_many_attempts`` past it, 401 ``invalid_credentials`` otherwise.
    """
    limiter_key = f"login-fail:{username}:{client}"
    redis = get_redis()
    if int(redis.get(limiter_key) or 0) >= MAX_FAILED_LOGINS:
        raise ApiError(429, "too_many_attempts", "too many failed sign-ins; try again later")
    user = db.session.scalar(select(User).where(User.username == username))
    # Hash even for unknown users so timing does not reveal which usernames exist.
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if not (user and valid and user.active):
        pipe = redis.pipeline()
        pipe.incr(limiter_key)
        pipe.expire(limiter_key, LOGIN_WINDOW_SECONDS)
        pipe.execute()
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    return user


def principal_of(user: User) -> Principal:
    """The Principal a signed-in ``user`` acts as."""
    return Principal(user_id=user.id, corp_id=user.corp_id, role=user.role, staff_id=user.staff_id)


def open_session(user: User, ttl_seconds: int) -> str:
    """Start a console session for ``user``: a random id kept in Redis for ``ttl_seconds``.

    The signed cookie carries only this id, so signing out (:func:`close_session`) ends the
    session on the server too: a copied cookie stops working at once.
    """
    sid = secrets.token_urlsafe(32)
    get_redis().set(_session_key(sid), user.id, ex=ttl_seconds)
    return sid


def session_user(sid: str | None) -> User | None:
    """The active user of a live console session, else None."""
    if not sid:
        return None
    user_id = get_redis().get(_session_key(sid))
    user = db.session.get(User, int(user_id)) if user_id else None
    return user if user is not None and user.active else None


def close_session(sid: str | None) -> None:
    """End a console session (sign-out)."""
    if sid:
        get_redis().delete(_session_key(sid))


def _session_key(sid: str) -> str:
    return f"console-session:{_hash(sid)}"


def issue_token(username: str, password: str, client: str) -> tuple[str, ApiToken]:
    """Exchange credentials for a fresh bearer token (see :func:`authenticate`)."""
    user = authenticate(username, password, client)
    raw = secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        token_hash=_hash(raw),
        expires_at=utcnow() + timedelta(seconds=current_app.config["API_TOKEN_TTL"]),
    )
    db.session.add(token)
    db.session.commit()
    return raw, token


def _token_row(raw: str) -> ApiToken | None:
    return db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(raw)))


def principal_from_header(header: str | None, roles: tuple[str, ...]) -> Principal:
    """Authenticate an ``Authorization: Bearer`` header and check the caller's role."""
    scheme, _, raw = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise ApiError(401, "unauthorized", "a bearer token is required")
    token = _token_row(raw.strip())
    if token is None or token.revoked_at is not None or token.expires_at <= utcnow() or not token.user.active:
        raise ApiError(401, "unauthorized", "the token is invalid, expired or revoked")
    user = token.user
    if user.role not in roles:
        raise ApiError(403, "forbidden", "your role may not do this")
    return principal_of(user)


def revoke_token(header: str | None) -> None:
    _, _, raw = (header or "").partition(" ")
    token = _token_row(raw.strip())
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()


_DUMMY_HASH = generate_password_hash("not-a-real-password")
