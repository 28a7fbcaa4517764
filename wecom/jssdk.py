"""JS-SDK signatures for our pages inside the WeCom client (the rep sidebar).

A page calls ``wx.config`` (signed with the corp's jsapi_ticket) and ``wx.agentConfig`` (signed
with the app's agent_config ticket) before it may use ``getCurExternalContact``. Both tickets
live 7200 s and WeCom limits how often they may be fetched, so they are cached in Redis per corp
and agent, refreshed ``REFRESH_MARGIN`` before they expire, and fetched by one caller at a time
(a Redis lock): a burst of sidebar opens costs WeCom one call, not one each.

wechatpy has the fetches (``jsapi.get_ticket``, ``jsapi.get_agent_ticket``) and the signature;
its own caching (``get_jsapi_ticket``) has neither a margin nor a lock, so it is not used.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import current_app
from redis.exceptions import LockError
from wechatpy.work.client.api import WeChatJSAPI

from wecom.client import WeComClient, agent_client

TICKET_KINDS = ("jsapi", "agent_config")
# Refresh this long before WeCom's expiry (or at half the lifetime for a ticket answered with
# less than twice this left), so a page never signs with a ticket that dies while it loads.
REFRESH_MARGIN = 300
# How long a fetch may hold the lock, and how long a caller with no usable ticket waits for it.
LOCK_SECONDS = 10
# What the sidebar asks the client for; the signature does not depend on it.
JS_API_LIST = ("getCurExternalContact", "getContext")


class TicketUnavailable(Exception):
    """No valid ticket, and the caller fetching one did not finish in time (try again)."""


@dataclass(frozen=True)
class Ticket:
    value: str
    refresh_at: float
    expires_at: float


class TicketCache:
    """The two JS-SDK tickets of one corp and agent, cached in Redis.

    ``clock`` is the time the tickets' lifetimes are measured on: wall time in production; a
    test against a time-scaled simulator passes the simulator's clock."""

    def __init__(
        self,
        client: WeComClient,
        agent_id: str,
        redis_conn: redis.Redis,
        clock: Callable[[], float] = time.time,
    ):
        self.client = client
        self.agent_id = agent_id
        self.redis = redis_conn
        self.clock = clock

    def key(self, kind: str) -> str:
        return f"wecom-ticket:{self.client.corp_id}:{self.agent_id}:{kind}"

    def get(self, kind: str) -> str:
        """A valid ticket of ``kind`` ("jsapi" or "agent_config"), fetched only when due."""
        if kind not in TICKET_KINDS:
            raise ValueError(f"unknown ticket kind {kind!r}")
        cached = self._read(kind)
        now = self.clock()
        if cached and now < cached.refresh_at:
            return cached.value
        usable = cached is not None and now < cached.expires_at
        # With a still-valid ticket in hand, do not queue behind another refresher: use it.
        lock = self.redis.lock(self.key(kind) + ":lock", timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS)
        if not lock.acquire(blocking=not usable):
            if usable:
                return cached.value
            raise TicketUnavailable(f"another caller has held the {kind} ticket lock for {LOCK_SECONDS} s")
        try:
            cached = self._read(kind)  # another caller may have fetched it while we waited
            if cached and self.clock() < cached.refresh_at:
                return cached.value
            return self._fetch(kind).value
        finally:
            try:
                lock.release()
            except LockError:  # the fetch outlived the lock; the other holder's release is theirs
                pass

    def _read(self, kind: str) -> Ticket | None:
        raw = self.redis.get(self.key(kind))
        return Ticket(**json.loads(raw)) if raw else None

    def _fetch(self, kind: str) -> Ticket:
        answer = self.client.jsapi.get_ticket() if kind == "jsapi" else self.client.jsapi.get_agent_ticket()
        lifetime = int(answer["expires_in"])
        now = self.clock()
        ticket = Ticket(
            value=answer["ticket"],
            refresh_at=now + lifetime - min(REFRESH_MARGIN, lifetime / 2),
            expires_at=now + lifetime,
        )
        self.redis.set(self.key(kind), json.dumps(ticket.__dict__), ex=max(lifetime, 1))
        return ticket


def signature(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    """The JS-SDK signature: sha1 of ``jsapi_ticket=…&noncestr=…&timestamp=…&url=…``, where url
    is the page's full address without its ``#fragment`` (WeCom signs exactly that)."""
    # wechatpy's signer sorts the four "name=value" strings, which is this very order.
    return WeChatJSAPI().get_jsapi_signature(noncestr, ticket, timestamp, url.split("#", 1)[0])


def _signed(ticket: str, url: str, timestamp: int) -> dict:
    nonce = secrets.token_hex(8)
    return {"timestamp": timestamp, "nonceStr": nonce, "signature": signature(ticket, nonce, timestamp, url)}


def page_config(cache: TicketCache, corp_id: str, url: str) -> dict:
    """What a page at ``url`` passes to ``wx.config`` and ``wx.agentConfig``."""
    timestamp = int(time.time())
    return {
        "config": {
            "beta": True,
            "appId": corp_id,
            **_signed(cache.get("jsapi"), url, timestamp),
            "jsApiList": list(JS_API_LIST),
        },
        "agentConfig": {
            "corpid": corp_id,
            "agentid": cache.agent_id,
            **_signed(cache.get("agent_config"), url, timestamp),
            "jsApiList": list(JS_API_LIST),
        },
    }


def ticket_cache() -> TicketCache:
    """The ticket cache of the env corp's app (agent)."""
    return TicketCache(agent_client(), current_app.config["WECOM_AGENT_ID"], current_app.extensions["redis"])
