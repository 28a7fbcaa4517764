"""The QR images behind contact ways' ``qr_code`` URLs."""

from __future__ import annotations

import io

import qrcode
from flask import Blueprint, Response, request

from .common import get_world, json_response

bp = Blueprint("sim_qr", __name__)


@bp.get("/qr/<config_id>")
def qr_image(config_id: str) -> Response:
    """A PNG QR code for the contact way (``?format=text`` for what it encodes)."""
    world = get_world()
    with world.lock:
        way = world.contact_ways.get(config_id)
        state = way.state if way else None
    if way is None:
        return json_response({"error": "contact way not found"}, 404)
    # The image encodes the control API's scan URL, so a phone-less demo can "scan" by POSTing it.
    target = f"{request.host_url}sim/scan?config_id={config_id}"
    if request.args.get("format") == "text":
        return json_response({"config_id": config_id, "state": state, "encodes": target})
    buffer = io.BytesIO()
    qrcode.make(target).save(buffer)
    return Response(buffer.getvalue(), mimetype="image/png")
