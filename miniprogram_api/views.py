"""/mp/v1 views: thin — authenticate, validate (the declared schemas), call a service, answer."""

from __future__ import annotations

from flask import g, jsonify, request

from app.api.routing import ApiBlueprint
from app.errors import ApiError
from app.schemas.mp import (
    AcceptedSchema,
    EventBatchSchema,
    MpCardSchema,
    PhoneRequest,
    PhoneSchema,
    SessionRequest,
    SessionSchema,
)
from app.services import cards, mp_auth, signals
from app.services.mp_auth import MpPrincipal, RateLimited

# Endpoints reachable without a session token (how a visitor gets one).
PUBLIC = frozenset({"mp.new_device", "mp.login"})
bp = ApiBlueprint("mp", __name__, tag="miniprogram", session_scheme="mpSession", public=PUBLIC)
# A batch of 50 events is ~10 KB; anything far larger is not a mini-program talking.
MAX_BODY_BYTES = 64 * 1024


@bp.before_request
def _gate():
    # Before the body is read: a flood or a forged token costs no parsing and learns nothing.
    g.mp_principal = mp_auth.gate(
        request.remote_addr, request.headers.get("Authorization"), session_required=request.endpoint not in PUBLIC
    )
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")


@bp.errorhandler(RateLimited)
def _rate_limited(exc: RateLimited):
    response = jsonify({"error": {"code": exc.code, "message": exc.message}})
    response.status_code = 429
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _principal() -> MpPrincipal:
    return g.mp_principal


@bp.operation("/device", "POST", response=SessionSchema, status=201, roles=())
def new_device():
    """An anonymous device token, for a visitor who has not logged in."""
    return mp_auth.issue_device()


@bp.operation("/session", "POST", body=SessionRequest, response=SessionSchema, status=201, roles=())
def login(body):
    """Log in with a wx.login code; a device token given along has its history claimed."""
    return mp_auth.login(body["code"], body.get("device_token"))


@bp.operation("/session", "DELETE", roles=())
def logout():
    """End this session."""
    mp_auth.revoke(request.headers.get("Authorization"))


@bp.operation("/phone", "POST", body=PhoneRequest, response=PhoneSchema, roles=())
def phone(body):
    """Share the verified phone number (a getPhoneNumber code)."""
    return {"phone": mp_auth.verify_phone(_principal(), body["code"]), "verified": True}


@bp.operation("/cards/<int:card_id>", "GET", response=MpCardSchema, roles=())
def card(card_id):
    """A rep's card, its content and how to add the rep (the successor's, if the rep left)."""
    principal = _principal()
    return cards.public_card(principal.corp_id, card_id, mp_auth.customer_of(principal))


# The hot path loads with one schema instance made once: building the nested schemas anew for
# every request costs a fifth of the request.
_EVENT_BATCH = EventBatchSchema()


@bp.operation("/events", "POST", response=AcceptedSchema, status=202, roles=())
def events():
    """Record a batch of up to 50 events (idempotent per client event id)."""
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    principal = _principal()
    return signals.ingest(principal.corp_id, principal.session_id, _EVENT_BATCH.load(body)["events"])
