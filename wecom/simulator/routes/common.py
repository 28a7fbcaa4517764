"""How every simulated API call is run: limits, faults, token, body, handler, counters.

Order per call: concurrency (45033) → injected fault (delay, errcode, HTTP 5xx) → access
token (41001/40014/42001/48002) → frequency limit (45009) → body (47001) → the handler, all
under the world lock. Route modules only declare ``Api`` rows; this module does the rest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, request

from .. import tokens
from ..entities import Token
from ..errors import ApiError
from ..world import World

EXTENSION = "wecom_simulator_world"


@dataclass
class Call:
    """What a handler sees of one API call."""

    world: World
    path: str
    args: Any  # request.args (a MultiDict)
    body: dict
    token: Token | None
    base_url: str

    def arg(self, name: str) -> str | None:
        return self.args.get(name)


Handler = Callable[[Call], dict]


@dataclass(frozen=True)
class Api:
    """One API: its path, HTTP method, who may call it and the handler.

    area: "contact" | "agent" | "any" for WeCom token areas, "wechat" for the mini-program
    token, None when no access token is needed (gettoken, jscode2session)."""

    path: str
    method: str
    area: str | None
    handler: Handler
    side: str = "wecom"  # "wecom" | "wechat": which fault scope and token family


def get_world() -> World:
    return current_app.extensions[EXTENSION]


def json_response(payload: dict, status: int = 200) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status, mimetype="application/json")


def _parse_body(method: str) -> dict:
    # wechatpy posts raw JSON without a Content-Type header, so read the bytes ourselves.
    if method != "POST":
        return {}
    raw = request.get_data()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(47001) from exc
    if not isinstance(body, dict):
        raise ApiError(47001)
    return body


def run(api: Api) -> Response:
    """Answer one call to ``api`` the way WeCom (or WeChat) would."""
    world = get_world()
    if not world.concurrency.try_acquire(world.config.max_concurrency):
        world.counters.record(api.path, 45033)
        return json_response(ApiError(45033).payload())
    try:
        fault = world.faults.pick(api.path, api.side)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.http_status:
            world.counters.record(api.path, fault.http_status)
            return Response("simulated upstream failure", status=fault.http_status, mimetype="text/plain")
        payload = _answer(world, api, fault.errcode if fault else None)
    finally:
        world.concurrency.release()
    world.counters.record(api.path, payload["errcode"])
    return json_response(payload)


def _answer(world: World, api: Api, injected: int | None) -> dict:
    try:
        if injected is not None:
            raise ApiError(injected)
        with world.lock:
            world.settle()
            token = None
            if api.area is not None:
                token = tokens.check(
                    world, request.args.get("access_token"), api.area, wechat=api.side == "wechat"
                )
            if api.side == "wecom" and api.area is not None:
                config = world.config
                if not world.rate.allow(
                    api.path, world.now(), config.rate_limit_per_minute, config.rate_limit_per_hour
                ):
                    raise ApiError(45009)
            call = Call(world, api.path, request.args, _parse_body(api.method), token, request.host_url)
            result = api.handler(call)
        return {"errcode": 0, "errmsg": "ok", **result}
    except ApiError as error:
        return error.payload()
    except (TypeError, ValueError, AttributeError) as error:
        # A field of the wrong JSON type (a string for a list, text for a number): WeCom answers
        # a parameter error, never a 500.
        return ApiError(40058, f"invalid parameter: {error}").payload()


def int_arg(call: Call, name: str, default: int | None = None) -> int | None:
    """An integer query argument; 40058 when it is not a number."""
    value = call.args.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ApiError(40058, f"invalid parameter: {name}") from exc
