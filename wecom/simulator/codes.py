"""Single-use codes minted by the control API, and the WeChat mini-program login.

- OAuth codes (a rep opens the app in WeCom) → auth/getuserinfo.
- wx.login codes (a WeChat user opens the mini-program) → sns/jscode2session.
- phone codes (getPhoneNumber button) → wxa/business/getuserphonenumber.
All live ``code_ttl`` (5 min) on the simulator clock and work once.
"""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING

from .entities import OneTimeCode
from .errors import ApiError, ControlError
from .people import create_customer, find_customer

if TYPE_CHECKING:
    from .world import World


def mint(world: World, kind: str, subject: str, phone: str = "") -> OneTimeCode:
    """A fresh code of ``kind`` for ``subject`` (userid, or a customer's external_userid)."""
    code = OneTimeCode(world.new_secret(32), kind, subject, world.now() + world.config.code_ttl, phone=phone)
    world.codes[code.code] = code
    return code


def mint_oauth(world: World, userid: str) -> OneTimeCode:
    user = world.users.get(userid)
    if user is None or not user.active:
        raise ControlError(404, f"user {userid} not found")
    return mint(world, "oauth", userid)


def wechat_user(world: World, spec: dict):
    """The WeChat user named by external_userid/unionid/openid, or a new one (from ``spec``)."""
    keys = {k: spec.get(k) for k in ("external_userid", "unionid", "openid") if spec.get(k)}
    customer = find_customer(world, **keys) if keys else None
    if customer is None:
        if keys.get("external_userid"):
            raise ControlError(404, f"customer {keys['external_userid']} not found")
        fields = {k: spec[k] for k in ("name", "unionid", "openid", "gender", "phone") if spec.get(k)}
        customer = create_customer(world, **fields)
    return customer


def consume(world: World, value: str | None, kind: str) -> OneTimeCode:
    """Use a code up: 40029 when unknown, of another kind, expired or used."""
    code = world.codes.get(value or "")
    if code is None or code.kind != kind or code.used or code.expires_at <= world.now():
        raise ApiError(40029)
    code.used = True
    return code


def oauth_userinfo(world: World, value: str | None, legacy: bool = False) -> dict:
    """auth/getuserinfo (``userid``) and the legacy user/getuserinfo (``UserId``)."""
    if not value:
        raise ApiError(41008)
    code = consume(world, value, "oauth")
    return {
        "UserId" if legacy else "userid": code.subject,
        "user_ticket": world.new_secret(40),
        "expires_in": 1800,
    }


def jscode2session(world: World, args) -> dict:
    """sns/jscode2session: openid, session_key and unionid for a wx.login code.
    40013 appid, 40125 secret, 40002 grant_type, 41008 missing code, 40029 bad/used code,
    45011 more than ``jscode_per_minute`` logins a minute for one user (code kept)."""
    if args.get("appid") != world.config.miniprogram_appid:
        raise ApiError(40013)
    if args.get("secret") != world.config.miniprogram_secret:
        raise ApiError(40125)
    if args.get("grant_type") != "authorization_code":
        raise ApiError(40002)
    value = args.get("js_code")
    if not value:
        raise ApiError(41008)
    code = world.codes.get(value)
    if code is None or code.kind != "jscode" or code.used or code.expires_at <= world.now():
        raise ApiError(40029)
    now = world.now()
    window = world.jscode_windows[code.subject]
    while window and now - window[0] >= 60:
        window.popleft()
    if len(window) >= world.config.jscode_per_minute:
        raise ApiError(45011)
    window.append(now)
    code.used = True
    customer = world.customers[code.subject]
    session_key = base64.b64encode(os.urandom(16)).decode()
    return {"openid": customer.openid, "session_key": session_key, "unionid": customer.unionid}


def phone_number(world: World, body: dict) -> dict:
    """wxa/business/getuserphonenumber: the phone behind a getPhoneNumber code."""
    code = consume(world, body.get("code"), "phone")
    customer = world.customers[code.subject]
    pure = code.phone or customer.phone
    country = customer.country_code
    return {
        "phone_info": {
            "phoneNumber": pure if country == "86" else f"+{country}{pure}",
            "purePhoneNumber": pure,
            "countryCode": country,
            "watermark": {"timestamp": world.now_int(), "appid": world.config.miniprogram_appid},
        }
    }
