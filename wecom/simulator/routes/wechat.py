"""The WeChat side (api.weixin.qq.com): mini-program login, access token, phone number."""

from __future__ import annotations

from .. import codes, tokens
from .common import Api, Call


def _token(call: Call) -> dict:
    return tokens.wechat_token(call.world, call.arg("grant_type"), call.arg("appid"), call.arg("secret"))


APIS = [
    Api(
        "sns/jscode2session",
        "GET",
        None,
        lambda call: codes.jscode2session(call.world, call.args),
        side="wechat",
    ),
    Api("cgi-bin/token", "GET", None, _token, side="wechat"),
    Api(
        "wxa/business/getuserphonenumber",
        "POST",
        "wechat",
        lambda call: codes.phone_number(call.world, call.body),
        side="wechat",
    ),
]
