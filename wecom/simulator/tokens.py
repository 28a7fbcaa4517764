"""Access tokens and JS tickets, for WeCom (per secret) and the WeChat mini-program.

WeCom: one token per secret, the same value while valid (as WeCom does), ``token_ttl`` seconds
on the simulator clock. The contact secret's token reaches externalcontact/* and idconvert/*;
the agent secret's token reaches message/send, tickets and OAuth; the other way round is 48002.
WeChat: each fetch mints a new token and cuts the previous ones to 5 minutes, as WeChat does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .entities import Token
from .errors import ApiError, ControlError

if TYPE_CHECKING:
    from .world import World

WECHAT_OVERLAP = 300  # seconds an old WeChat token keeps working after a new one is fetched


def get_token(world: World, corpid: str | None, corpsecret: str | None) -> dict:
    """gettoken: 41002/41004 missing, 40013 wrong corp, 40001 wrong secret."""
    if not corpid:
        raise ApiError(41002)
    if not corpsecret:
        raise ApiError(41004)
    if corpid != world.config.corp_id:
        raise ApiError(40013)
    areas = {world.config.contact_secret: "contact", world.config.agent_secret: "agent"}
    area = areas.get(corpsecret)
    if area is None:
        raise ApiError(40001)
    now = world.now()
    for token in world.tokens.values():
        if token.area == area and token.revoked is None and token.expires_at > now:
            return {"access_token": token.value, "expires_in": int(token.expires_at - now)}
    token = Token(world.new_secret(64), area, now, now + world.config.token_ttl)
    world.tokens[token.value] = token
    return {"access_token": token.value, "expires_in": world.config.token_ttl}


def check(world: World, value: str | None, area: str, wechat: bool = False) -> Token:
    """The token behind ``value``, allowed in ``area`` ("any" for both WeCom areas).
    WeCom: 41001 missing, 40014 invalid, 42001 expired, 48002 wrong area.
    WeChat: 41001 missing, 40001 invalid, 42001 expired."""
    if not value:
        raise ApiError(41001)
    invalid_code = 40001 if wechat else 40014
    token = world.tokens.get(value)
    if token is None or token.revoked == "invalid" or (token.area == "wechat") != wechat:
        raise ApiError(invalid_code)
    if token.revoked == "expired" or token.expires_at <= world.now():
        raise ApiError(42001)
    if area != "any" and token.area != area:
        raise ApiError(48002)
    return token


def wechat_token(world: World, grant_type: str | None, appid: str | None, secret: str | None) -> dict:
    """WeChat cgi-bin/token (client_credential): 40002 grant_type, 40013 appid, 40001 secret."""
    if grant_type != "client_credential":
        raise ApiError(40002)
    if appid != world.config.miniprogram_appid:
        raise ApiError(40013)
    if secret != world.config.miniprogram_secret:
        raise ApiError(40001, "invalid credential, access_token is invalid or not latest")
    now = world.now()
    for token in world.tokens.values():
        if token.area == "wechat" and token.expires_at > now + WECHAT_OVERLAP:
            token.expires_at = now + WECHAT_OVERLAP
    token = Token(world.new_secret(64), "wechat", now, now + world.config.token_ttl)
    world.tokens[token.value] = token
    return {"access_token": token.value, "expires_in": world.config.token_ttl}


def invalidate(world: World, area: str | None, mode: str) -> int:
    """Revoke live tokens early (all, or one area). mode "invalid" → 40014/40001 on next use,
    "expired" → 42001. Returns how many were revoked."""
    if mode not in ("invalid", "expired"):
        raise ControlError(400, "mode must be 'invalid' or 'expired'")
    if area not in (None, "contact", "agent", "wechat"):
        raise ControlError(400, "area must be contact, agent, wechat or null")
    count = 0
    for token in world.tokens.values():
        if (area is None or token.area == area) and token.revoked is None:
            token.revoked = mode
            count += 1
    return count


def ticket(world: World, kind: str) -> dict:
    """get_jsapi_ticket (kind "jsapi") / ticket/get?type=agent_config: same ticket while valid."""
    now = world.now()
    current = world.tickets.get(kind)
    if current is None or current[1] <= now:
        current = (world.new_secret(40), now + world.config.ticket_ttl)
        world.tickets[kind] = current
    return {"ticket": current[0], "expires_in": int(current[1] - now)}


def summary(world: World) -> dict:
    now = world.now()
    result: dict[str, dict[str, int]] = {}
    for token in world.tokens.values():
        counts = result.setdefault(token.area, {"issued": 0, "live": 0})
        counts["issued"] += 1
        if token.revoked is None and token.expires_at > now:
            counts["live"] += 1
    return result
