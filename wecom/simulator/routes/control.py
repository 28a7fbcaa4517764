"""The control API (``/sim/…``): seed and inspect the world, act as customers and reps,
mint codes, inject faults, move the clock. JSON in, JSON out; errors as HTTP 4xx {error}.

Actions that make WeCom send callbacks return at once; with ``"wait": true`` they return
after the callbacks were delivered (or failed all attempts), with the delivery records.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Blueprint, Response, request

from .. import actions, codes, seed, snapshot, tokens
from ..actions import Outcome
from ..callbacks import verify_url
from ..directory import add_department
from ..errors import ApiError, ControlError
from ..people import create_customer
from .common import get_world, json_response

bp = Blueprint("sim_control", __name__, url_prefix="/sim")


@bp.errorhandler(ControlError)
def _control_error(error: ControlError) -> Response:
    return json_response({"error": error.message}, error.status)


@bp.errorhandler(ValueError)
@bp.errorhandler(TypeError)
def _bad_value(error: Exception) -> Response:
    return json_response({"error": f"bad value: {error}"}, 400)


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    return json_response({"error": error.errmsg, "errcode": error.errcode}, 400)


def _body() -> dict:
    body = request.get_json(force=True, silent=True) if request.get_data() else {}
    if body is None or not isinstance(body, dict):
        raise ControlError(400, "JSON object body required")
    # Query parameters count too, so a QR's scan URL can be POSTed as is.
    return {**request.args.to_dict(), **body}


def _run(action: Callable[[], Outcome], body: dict) -> Response:
    """Run an action under the world lock; with ``wait`` block (unlocked) for its callbacks."""
    world = get_world()
    with world.lock:
        outcome = action()
    data = dict(outcome.data)
    if body.get("wait") in (True, "true", "1", 1):
        config = world.config
        budget = config.callback_attempts * (config.callback_timeout + config.callback_retry_pause) + 5
        deadline = time.monotonic() + budget
        for delivery in outcome.deliveries:
            delivery.done.wait(max(0.0, deadline - time.monotonic()))
    data["callbacks"] = [d.to_dict() for d in outcome.deliveries]
    return json_response(data)


# -- world --------------------------------------------------------------------------------
@bp.get("/health")
def health() -> Response:
    world = get_world()
    return json_response(
        {
            "ok": True,
            "corp_id": world.config.corp_id,
            "agent_id": world.config.agent_id,
            "now": world.now(),
            "base_url": request.host_url,
        }
    )


@bp.get("/state")
def state() -> Response:
    world = get_world()
    only = [s for s in request.args.get("sections", "").split(",") if s] or None
    with world.lock:
        try:
            return json_response(snapshot.build(world, only))
        except KeyError as exc:
            raise ControlError(400, f"unknown section {exc.args[0]}") from exc


@bp.post("/reset")
def reset() -> Response:
    body = _body()
    world = get_world()
    world.reset()
    result = {"reset": True}
    if body.get("seed_demo"):
        with world.lock:
            result["seeded"] = seed.seed_demo(world)
    return json_response(result)


@bp.post("/seed_demo")
def seed_demo() -> Response:
    world = get_world()
    with world.lock:
        return json_response(seed.seed_demo(world))


@bp.route("/config", methods=["GET", "POST"])
def config() -> Response:
    world = get_world()
    with world.lock:
        changed = world.config.update(_body()) if request.method == "POST" else {}
        if "time_scale" in changed:
            world.clock.set_time_scale(changed["time_scale"])
        return json_response({"changed": changed, "config": world.config.public()})


@bp.get("/clock")
def clock() -> Response:
    world = get_world()
    return json_response(
        {
            "now": world.now(),
            "real": world.clock.real(),
            "time_scale": world.clock.time_scale,
            "offset": world.clock.offset,
        }
    )


@bp.post("/clock/advance")
def advance() -> Response:
    body = _body()
    return _run(lambda: actions.advance_clock(get_world(), body.get("seconds", 0)), body)


# -- directory ----------------------------------------------------------------------------
@bp.post("/departments")
def departments() -> Response:
    body = _body()
    world = get_world()
    with world.lock:
        department = add_department(
            world,
            body.get("name") or "",
            int(body.get("parentid", 1)),
            body.get("id"),
            int(body.get("order", 0)),
        )
    return json_response(department.to_api())


@bp.post("/users")
def users() -> Response:
    body = _body()
    spec = {k: v for k, v in body.items() if k not in ("notify", "wait")}
    return _run(lambda: actions.create_user(get_world(), spec, bool(body.get("notify"))), body)


@bp.post("/users/<userid>/update")
def update_user(userid: str) -> Response:
    body = _body()
    changes = {k: v for k, v in body.items() if k != "wait"}
    return _run(lambda: actions.update_user(get_world(), userid, changes), body)


@bp.post("/users/<userid>/resign")
def resign(userid: str) -> Response:
    body = _body()
    return _run(lambda: actions.resign(get_world(), userid), body)


@bp.post("/users/<userid>/contact_limit")
def contact_limit(userid: str) -> Response:
    body = _body()
    return _run(lambda: actions.set_contact_limit(get_world(), userid, body.get("limit")), body)


@bp.post("/users/<userid>/delete_customer")
def delete_customer(userid: str) -> Response:
    body = _body()
    return _run(
        lambda: actions.rep_deletes_customer(get_world(), userid, body.get("external_userid", "")), body
    )


# -- customers ----------------------------------------------------------------------------
@bp.post("/customers")
def customers() -> Response:
    body = _body()
    fields = {
        k: body[k]
        for k in (
            "name",
            "unionid",
            "openid",
            "external_userid",
            "gender",
            "phone",
            "avatar",
            "type",
            "corp_name",
        )
        if k in body
    }
    world = get_world()
    with world.lock:
        customer = create_customer(world, **fields)
    return json_response(customer.to_dict())


@bp.post("/scan")
def scan() -> Response:
    body = _body()
    return _run(lambda: actions.scan(get_world(), body), body)


@bp.post("/customers/<external_userid>/delete_rep")
def delete_rep(external_userid: str) -> Response:
    body = _body()
    return _run(
        lambda: actions.customer_deletes_rep(get_world(), external_userid, body.get("userid", "")), body
    )


@bp.post("/customers/<external_userid>/edit")
def edit(external_userid: str) -> Response:
    body = _body()
    changes = {k: v for k, v in body.items() if k not in ("userid", "wait")}
    return _run(
        lambda: actions.edit_customer(get_world(), body.get("userid", ""), external_userid, changes), body
    )


@bp.post("/customers/<external_userid>/chat")
def chat(external_userid: str) -> Response:
    body = _body()
    return _run(lambda: actions.start_chat(get_world(), body.get("userid", ""), external_userid), body)


@bp.post("/transfers/refuse")
def refuse() -> Response:
    body = _body()
    return _run(
        lambda: actions.refuse_transfer(
            get_world(), body.get("external_userid", ""), body.get("takeover_userid")
        ),
        body,
    )


# -- group chats --------------------------------------------------------------------------
@bp.post("/groupchats")
def create_chat() -> Response:
    body = _body()
    return _run(lambda: actions.create_chat(get_world(), body), body)


@bp.post("/groupchats/<chat_id>/update")
def update_chat(chat_id: str) -> Response:
    body = _body()
    return _run(lambda: actions.update_chat(get_world(), chat_id, body), body)


@bp.post("/groupchats/<chat_id>/dismiss")
def dismiss_chat(chat_id: str) -> Response:
    body = _body()
    return _run(lambda: actions.dismiss_chat(get_world(), chat_id), body)


# -- codes --------------------------------------------------------------------------------
@bp.post("/codes/oauth")
def oauth_code() -> Response:
    body = _body()
    world = get_world()
    with world.lock:
        code = codes.mint_oauth(world, body.get("userid", ""))
    return json_response({"code": code.code, "userid": code.subject, "expires_at": code.expires_at})


@bp.post("/codes/jscode")
def js_code() -> Response:
    body = _body()
    world = get_world()
    with world.lock:
        customer = codes.wechat_user(world, body)
        code = codes.mint(world, "jscode", customer.external_userid)
    return json_response(
        {
            "code": code.code,
            "openid": customer.openid,
            "unionid": customer.unionid,
            "external_userid": customer.external_userid,
            "expires_at": code.expires_at,
        }
    )


@bp.post("/codes/phone")
def phone_code() -> Response:
    body = _body()
    world = get_world()
    with world.lock:
        customer = codes.wechat_user(world, body)
        if body.get("phone"):
            customer.phone = str(body["phone"])
        if body.get("country_code"):
            customer.country_code = str(body["country_code"])
        code = codes.mint(world, "phone", customer.external_userid)
    return json_response(
        {
            "code": code.code,
            "phone": customer.phone,
            "external_userid": customer.external_userid,
            "expires_at": code.expires_at,
        }
    )


# -- faults, tokens, callbacks ------------------------------------------------------------
@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults() -> Response:
    world = get_world()
    if request.method == "POST":
        return json_response(world.faults.configure(_body()))
    if request.method == "DELETE":
        world.faults.clear()
    return json_response(world.faults.to_dict())


@bp.post("/tokens/invalidate")
def invalidate_tokens() -> Response:
    body = _body()
    world = get_world()
    with world.lock:
        count = tokens.invalidate(world, body.get("area"), body.get("mode", "invalid"))
    return json_response({"revoked": count})


@bp.get("/callbacks")
def callbacks() -> Response:
    world = get_world()
    return json_response({"callbacks": world.callbacks.records(), **world.callbacks.status()})


@bp.post("/callbacks/flush")
def flush_callbacks() -> Response:
    body = _body()
    world = get_world()
    done = world.callbacks.flush(float(body.get("timeout", 10)))
    return json_response({"flushed": done, "callbacks": world.callbacks.records()})


@bp.post("/callbacks/hold")
def hold_callbacks() -> Response:
    get_world().callbacks.hold()
    return json_response({"held": True})


@bp.post("/callbacks/release")
def release_callbacks() -> Response:
    get_world().callbacks.release()
    return json_response({"held": False})


@bp.post("/verify_url")
def verify() -> Response:
    body = _body()
    world = get_world()
    url = body.get("url") or world.config.callback_url
    if not url:
        raise ControlError(400, "no callback url configured")
    return json_response(verify_url(world.config, url))
