"""/wecom/callback: WeCom's URL verification (GET) and event intake (POST).

The request only verifies, decrypts, stores and enqueues — it never calls WeCom — so it answers
well inside WeCom's 5 s limit. Bad signature → 403; a body we cannot read → 400; too large →
413; nothing is stored or enqueued for any of them.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, request

from app.errors import ApiError
from app.services import events
from wecom.crypto import CallbackCrypto, CallbackDecryptError, CallbackSignatureError
from wecom.events import MalformedEvent, parse_xml

bp = Blueprint("wecom_callback", __name__)
log = logging.getLogger(__name__)


def _crypto() -> CallbackCrypto:
    return current_app.extensions["callback_crypto"]


def _params(*names: str) -> list[str]:
    values = [request.args.get(n, "") for n in names]
    if not all(values):
        raise ApiError(400, "bad_request", f"query parameters {', '.join(names)} are required")
    return values


def _open(msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
    try:
        return _crypto().verify_and_decrypt(msg_signature, timestamp, nonce, encrypt)
    except CallbackSignatureError:
        raise ApiError(403, "bad_signature", "the signature does not match") from None
    except CallbackDecryptError:
        raise ApiError(400, "undecryptable", "the payload cannot be decrypted for this corp") from None


@bp.get("/wecom/callback")
def verify_url():
    """URL verification: answer the decrypted echostr alone (Flask has already URL-decoded it)."""
    msg_signature, timestamp, nonce, echostr = _params("msg_signature", "timestamp", "nonce", "echostr")
    return Response(_open(msg_signature, timestamp, nonce, echostr), mimetype="text/plain")


@bp.post("/wecom/callback")
def receive():
    msg_signature, timestamp, nonce = _params("msg_signature", "timestamp", "nonce")
    if (request.content_length or 0) > current_app.config["CALLBACK_MAX_BYTES"]:
        raise ApiError(413, "too_large", "the body is larger than a WeCom callback can be")
    body = request.stream.read(current_app.config["CALLBACK_MAX_BYTES"] + 1)
    if len(body) > current_app.config["CALLBACK_MAX_BYTES"]:
        raise ApiError(413, "too_large", "the body is larger than a WeCom callback can be")
    try:
        encrypt = parse_xml(body).get("Encrypt", "")
    except MalformedEvent:
        raise ApiError(400, "malformed", "the body is not a WeCom callback envelope") from None
    if not encrypt:
        raise ApiError(400, "malformed", "the envelope has no Encrypt element")
    plaintext = _open(msg_signature, timestamp, nonce, encrypt)
    try:
        fields = parse_xml(plaintext)
    except MalformedEvent:
        raise ApiError(400, "malformed", "the decrypted payload is not an event") from None
    if not fields.get("Event"):
        raise ApiError(400, "malformed", "the payload carries no Event")
    event_id, is_new = events.intake(fields)
    if not is_new:
        log.info("duplicate callback acknowledged")
    return Response("success", mimetype="text/plain")


def init_app(app: Flask) -> None:
    app.extensions["callback_crypto"] = CallbackCrypto(
        app.config["WECOM_TOKEN"], app.config["WECOM_ENCODING_AES_KEY"], app.config["WECOM_CORP_ID"]
    )
    app.register_blueprint(bp)
