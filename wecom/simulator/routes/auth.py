"""gettoken, JS tickets and OAuth: tokens and the agent-secret side of WeCom."""

from __future__ import annotations

from .. import codes, tokens
from ..errors import ApiError
from .common import Api, Call


def _gettoken(call: Call) -> dict:
    return tokens.get_token(call.world, call.arg("corpid"), call.arg("corpsecret"))


def _agent_ticket(call: Call) -> dict:
    if call.arg("type") != "agent_config":
        raise ApiError(91040)
    return tokens.ticket(call.world, "agent_config")


APIS = [
    Api("gettoken", "GET", None, _gettoken),
    Api("get_jsapi_ticket", "GET", "agent", lambda call: tokens.ticket(call.world, "jsapi")),
    Api("ticket/get", "GET", "agent", _agent_ticket),
    Api("auth/getuserinfo", "GET", "agent", lambda call: codes.oauth_userinfo(call.world, call.arg("code"))),
    Api(
        "user/getuserinfo",
        "GET",
        "agent",
        lambda call: codes.oauth_userinfo(call.world, call.arg("code"), legacy=True),
    ),
]
