"""The sidebar's JSON API, /sidebar/v1: thin views over the services, signed-in reps only.

Every customer, note and timeline read or write goes through ``customer360`` / ``timeline``,
which scope it to the rep: another rep's customer (or its notes) answers 404, never data.
State-changing calls need the session's ``X-CSRF-Token`` (checked in ``session``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from flask import current_app, jsonify, request
from wechatpy.exceptions import WeChatClientException

from app.errors import ApiError, NotFound
from app.schemas.common import page_of
from app.schemas.note import NoteSchema, TagEditSchema
from app.schemas.oneid import TimelineEntrySchema, TimelineQuery
from app.services import customer360, tags, timeline
from app.services.auth import Principal
from app.sidebar import bp
from app.sidebar.schemas import JssdkQuery, NoteOutSchema, TagOutSchema, as_json
from app.sidebar.session import api_login_required, csrf_token
from wecom import jssdk
from wecom.errors import is_transient

MAX_EXTERNAL_USERID = 128


def _json_body() -> dict:
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return data


def _view(principal: Principal, customer_id: int):
    view = as_json(customer360.view(principal, customer_id))
    # A merged id answers the survivor: name the id the view is of.
    return jsonify({"customer_id": view["customer"]["id"], **view})


@bp.get("/v1/me")
@api_login_required
def me(principal: Principal):
    """Who is signed in, and the CSRF token for state-changing calls."""
    return jsonify(user_id=principal.user_id, staff_id=principal.staff_id, csrf_token=csrf_token())


@bp.get("/v1/jssdk-config")
@api_login_required
def jssdk_config(principal: Principal):
    """What the page passes to ``wx.config`` and ``wx.agentConfig`` (signed for ``url``)."""
    url = JssdkQuery().load(request.args.to_dict())["url"]
    # Only our own pages get signatures: WeCom checks the domain too, but we sign nothing else.
    if urlsplit(url).netloc != request.host:
        raise ApiError(422, "validation_error", "the request has invalid fields", {"url": ["not a page of this site"]})
    try:
        config = jssdk.page_config(jssdk.ticket_cache(), current_app.config["WECOM_CORP_ID"], url)
    except jssdk.TicketUnavailable as exc:
        raise ApiError(503, "wecom_unavailable", "the JS-SDK ticket is being fetched; try again") from exc
    except (WeChatClientException, requests.RequestException) as exc:
        if is_transient(exc):
            raise ApiError(503, "wecom_unavailable", "WeCom did not answer; try again") from exc
        errcode = getattr(exc, "errcode", None)
        raise ApiError(502, "wecom_error", f"WeCom refused the ticket (errcode {errcode})") from exc
    return jsonify(config)


@bp.get("/v1/contacts/<external_userid>")
@api_login_required
def contact(principal: Principal, external_userid: str):
    """The 360 of the external contact the rep is chatting with (``getCurExternalContact``)."""
    if len(external_userid) > MAX_EXTERNAL_USERID:
        raise NotFound("customer")
    return _view(principal, customer360.resolve_external(principal, external_userid))


@bp.get("/v1/customers/<int:customer_id>")
@api_login_required
def customer(principal: Principal, customer_id: int):
    """One customer's 360 view."""
    return _view(principal, customer_id)


@bp.get("/v1/customers/<int:customer_id>/timeline")
@api_login_required
def customer_timeline(principal: Principal, customer_id: int):
    """The customer's unified timeline, newest first (``kind``, ``page``, ``per_page``)."""
    query = TimelineQuery().load(request.args.to_dict())
    page = timeline.for_customer(principal, customer_id, **query)
    return jsonify(page_of(TimelineEntrySchema)().dump(page))


@bp.post("/v1/customers/<int:customer_id>/notes")
@api_login_required
def add_note(principal: Principal, customer_id: int):
    """Add a note ``{body}`` to the customer."""
    body = NoteSchema().load(_json_body())["body"]
    note = customer360.add_note(principal, customer_id, body)
    return jsonify(NoteOutSchema().dump(note)), 201


@bp.patch("/v1/notes/<int:note_id>")
@api_login_required
def edit_note(principal: Principal, note_id: int):
    """Change the text of a note of yours ``{body}``."""
    body = NoteSchema().load(_json_body())["body"]
    note = customer360.edit_note(principal, note_id, body)
    return jsonify(NoteOutSchema().dump(note))


@bp.put("/v1/customers/<int:customer_id>/tags")
@api_login_required
def edit_tags(principal: Principal, customer_id: int):
    """Add and remove corp tags on your relation with the customer ``{add_tag_ids, remove_tag_ids}``
    (WeCom's ``mark_tag`` first); answers the relation's tags after the change."""
    data = TagEditSchema().load(_json_body())
    relation = customer360.set_tags(principal, customer_id, data["add_tag_ids"], data["remove_tag_ids"])
    return jsonify(tags=TagOutSchema(many=True).dump(relation.tags))


@bp.get("/v1/tags")
@api_login_required
def corp_tags(principal: Principal):
    """The corp's tags, for the tag editor."""
    return jsonify(tags=TagOutSchema(many=True).dump(tags.corp_tags(principal)))
