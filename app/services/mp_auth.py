"""Mini-program sessions: opaque random tokens, stored hashed, expiring; rate limits.

- An anonymous visitor first gets a *device* token (``issue_device``); its events are recorded
  against the device session with no customer.
- ``login`` exchanges a wx.login code at WeChat (jscode2session) for openid/unionid, resolves
  them to the OneID customer and answers a *user* token. If the client presents its device
  token, the device is claimed: its past events, visits and shares become the customer's and
  count towards their intent. The openid and WeChat's session_key stay on the server; no
  endpoint accepts an openid from a client.
- ``verify_phone`` exchanges a getPhoneNumber code for the verified phone and links it.
Tokens are looked up by SHA-256 in Redis (a short cache) or the database. Rate limits are
fixed one-minute windows in Redis, per client address and per token, counted in the same
round trip as the session lookup (``gate``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from flask import current_app
from sqlalchemy import exists, select, update

from app.errors import ApiError
from app.extensions import db, get_redis
from app.models import Identity, IdentityType, MpSession, SessionKind, utcnow
from app.services import corps, oneid
from app.services.signals import Scoring, reattribute
from wecom.errors import is_transient
from wecom.wechat_client import INVALID_CODE, LOGIN_TOO_FREQUENT, WeChatApiError, miniprogram_client

CACHE_SECONDS = 300
RATE_WINDOW = 60
# WeChat's "code already used" (besides 40029 invalid code).
CODE_USED = 40163


def setting(name: str) -> int:
    return int(current_app.config[name])


@dataclass(frozen=True)
class MpPrincipal:
    """The caller of a mini-program endpoint."""

    session_id: int
    corp_id: int
    kind: SessionKind
    customer_id: int | None  # a user session's customer; None for a device token


@dataclass(frozen=True)
class Issued:
    token: str
    expires_at: datetime
    kind: SessionKind
    phone_verified: bool = False
    device_claimed: bool = False


class RateLimited(ApiError):
    """429, with how long until the window resets."""

    def __init__(self, retry_after: int):
        super().__init__(429, "rate_limited", "too many requests; slow down")
        self.retry_after = retry_after


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new(corp_id: int, kind: SessionKind, customer_id: int | None, ttl_setting: str) -> tuple[str, MpSession]:
    raw = secrets.token_urlsafe(32)
    session = MpSession(
        corp_id=corp_id,
        token_hash=_hash(raw),
        kind=kind,
        customer_id=customer_id,
        expires_at=utcnow() + timedelta(seconds=setting(ttl_setting)),
    )
    db.session.add(session)
    db.session.flush()
    return raw, session


def issue_device() -> Issued:
    """A fresh anonymous device token of the deployment's corp."""
    raw, session = _new(corps.env_corp_id(), SessionKind.device, None, "MP_DEVICE_TOKEN_TTL")
    db.session.commit()
    _cache(session)  # its first events must not all miss the cache at once
    return Issued(raw, session.expires_at, SessionKind.device)


def _wechat_error(exc: Exception, what: str) -> ApiError:
    if isinstance(exc, WeChatApiError) and exc.errcode in (INVALID_CODE, CODE_USED):
        return ApiError(400, "invalid_code", f"the {what} code is invalid, expired or already used")
    if isinstance(exc, WeChatApiError) and exc.errcode == LOGIN_TOO_FREQUENT:
        return RateLimited(60)
    if is_transient(exc) or (isinstance(exc, WeChatApiError) and exc.errcode is None):
        return ApiError(503, "wechat_unavailable", "WeChat did not answer; try again")
    return ApiError(502, "wechat_error", f"WeChat refused the {what} code")


def login(code: str, device_token: str | None = None) -> Issued:
    """wx.login code → the OneID customer and a user session; claims ``device_token``'s history."""
    try:
        answer = miniprogram_client().jscode2session(code)
    except (WeChatApiError, requests.RequestException) as exc:
        raise _wechat_error(exc, "login") from None
    corp_id = corps.env_corp_id()
    with oneid.busy_answers_409():  # the visitor retries; the code is spent, so we cannot
        customer = oneid.resolve_or_create(
            corp_id,
            [(IdentityType.mp_openid, answer["openid"]), (IdentityType.unionid, answer.get("unionid"))],
            source="mp_login",
        )
        raw, session = _new(corp_id, SessionKind.user, customer.id, "MP_SESSION_TTL")
        scoring = Scoring()
        claimed = bool(device_token) and _claim(corp_id, device_token, customer.id, scoring)
        db.session.commit()
    _cache(session)
    scoring.notify()
    return Issued(raw, session.expires_at, SessionKind.user, _phone_verified(customer.id), claimed)


def _claim(corp_id: int, device_token: str, customer_id: int, scoring: Scoring) -> bool:
    """Attach an unclaimed device session of the corp to the customer and re-attribute its
    history. The UPDATE takes the session row's lock first, which orders it with the drainer."""
    device_id = db.session.scalar(
        update(MpSession)
        .where(
            MpSession.token_hash == _hash(device_token),
            MpSession.corp_id == corp_id,
            MpSession.kind == SessionKind.device,
            MpSession.customer_id.is_(None),
            MpSession.revoked_at.is_(None),
        )
        .values(customer_id=customer_id, claimed_at=utcnow())
        .returning(MpSession.id)
        .execution_options(synchronize_session=False)
    )
    if device_id is None:
        return False
    reattribute(corp_id, device_id, customer_id, scoring)
    return True


def _phone_verified(customer_id: int) -> bool:
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    Identity.customer_id == customer_id,
                    Identity.type == IdentityType.phone,
                    Identity.verified.is_(True),
                )
            )
        )
    )


def gate(address: str | None, header: str | None, *, session_required: bool) -> MpPrincipal | None:
    """Admit a request: count it against its address's rate and, with a token, the token's;
    resolve the token to its session. One Redis round trip when the session is cached.
    429 past a rate; 401 when a required token is missing, unknown, expired or revoked."""
    now = time.time()
    window = int(now // RATE_WINDOW)
    token_hash = None
    if session_required:
        scheme, _, raw = (header or "").partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw or len(raw) > 128:
            raise ApiError(401, "unauthorized", "a mini-program session token is required")
        token_hash = _hash(raw)
    redis = get_redis()
    pipe = redis.pipeline(transaction=False)
    address_key = f"mp:rl:ip:{address or 'unknown'}:{window}"
    pipe.incr(address_key)
    pipe.expire(address_key, RATE_WINDOW + 1)
    if token_hash:
        token_key = f"mp:rl:token:{token_hash[:32]}:{window}"
        pipe.incr(token_key)
        pipe.expire(token_key, RATE_WINDOW + 1)
        pipe.get(f"mp:sess:{token_hash}")
    answers = pipe.execute()
    retry_after = int(RATE_WINDOW - now % RATE_WINDOW) + 1
    if answers[0] > setting("MP_RATE_PER_IP"):
        raise RateLimited(retry_after)
    if token_hash is None:
        return None
    principal = _lookup(token_hash, answers[4], now)
    if principal is None:
        raise ApiError(401, "unauthorized", "the session token is invalid, expired or revoked")
    if answers[2] > setting("MP_RATE_PER_TOKEN"):
        raise RateLimited(retry_after)
    return principal


def _lookup(token_hash: str, cached: bytes | None, now: float) -> MpPrincipal | None:
    if cached:
        data = json.loads(cached)
        if data["exp"] > now:
            return MpPrincipal(data["id"], data["corp"], SessionKind(data["kind"]), data["cust"])
        return None
    row = db.session.scalar(select(MpSession).where(MpSession.token_hash == token_hash))
    if row is None or row.revoked_at is not None or row.expires_at.timestamp() <= now:
        return None
    return _cache(row, now)


def _cache(row: MpSession, now: float | None = None) -> MpPrincipal:
    """Remember a committed session in Redis for a few minutes; the principal it stands for."""
    now = time.time() if now is None else now
    # A device's customer may change (claim), so only a user session's customer is cached.
    customer_id = row.customer_id if row.kind == SessionKind.user else None
    ttl = int(min(CACHE_SECONDS, row.expires_at.timestamp() - now)) or 1
    get_redis().set(
        f"mp:sess:{row.token_hash}",
        json.dumps(
            {
                "id": row.id,
                "corp": row.corp_id,
                "kind": str(row.kind),
                "cust": customer_id,
                "exp": row.expires_at.timestamp(),
            }
        ),
        ex=ttl,
    )
    return MpPrincipal(row.id, row.corp_id, row.kind, customer_id)


def revoke(header: str | None) -> None:
    """End the session of ``header`` (logout); its token stops working at once."""
    _, _, raw = (header or "").partition(" ")
    token_hash = _hash(raw.strip())
    row = db.session.scalar(select(MpSession).where(MpSession.token_hash == token_hash))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.commit()
    get_redis().delete(f"mp:sess:{token_hash}")


def customer_of(principal: MpPrincipal) -> int | None:
    """The visitor's customer: a user session's, or the customer who claimed a device."""
    if principal.customer_id is not None:
        return principal.customer_id
    return db.session.scalar(select(MpSession.customer_id).where(MpSession.id == principal.session_id))


def verify_phone(principal: MpPrincipal, code: str) -> str:
    """getPhoneNumber code → the verified phone, linked to the customer (OneID). Returns it
    masked; 403 for a device token (the visitor must log in first)."""
    if principal.kind != SessionKind.user or principal.customer_id is None:
        raise ApiError(403, "login_required", "log in before sharing a phone number")
    try:
        info = miniprogram_client().get_phone_number(code)
    except (WeChatApiError, requests.RequestException) as exc:
        raise _wechat_error(exc, "phone") from None
    pure, country = info["purePhoneNumber"], info.get("countryCode") or "86"
    phone = f"+{country}{pure}"
    with oneid.busy_answers_409():
        oneid.link_phone(principal.corp_id, principal.customer_id, phone, verified=True, source="mp_phone")
        db.session.commit()
    return f"+{country} {pure[:3]}****{pure[-4:]}" if len(pure) >= 7 else f"+{country} ****"
