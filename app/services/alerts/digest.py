"""Pacing and digests: how many messages one member may get, and what one message says.

WeCom takes at most 30 app messages a minute and 1000 an hour per member; past that it still
answers errcode 0 and drops the message silently. So we count every message we send in Redis
(a sorted set of send times per member, checked and updated by one Lua script on Redis's own
clock, so every worker agrees) and never ask WeCom for more. On top of WeCom's limits a corp
sets a burst limit (default 3 messages in 10 s): alerts that arrive beyond it wait, and the
next slot carries all of them as one digest ("Wang read 3 items; Li shared your card").
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

from flask import current_app

from app.extensions import get_redis
from app.models import AlertKind
from app.services.alerts.settings import AlertSettings

WECOM_PER_MINUTE = 30
WECOM_PER_HOUR = 1000
# Our clock and WeCom's differ by the network's delay: slightly longer windows keep us inside theirs.
WINDOW_SLACK_SECONDS = 2

TITLE_BYTES = 128
DESCRIPTION_BYTES = 512
BUTTON = "详情"
INBOX_PATH = "/sidebar/alerts"

# KEYS[1]: the member's send times. ARGV[1]: a unique member; then (window ms, limit) pairs.
# Returns {1, 0} and records the send when every window has room, else {0, ms to wait}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local longest, wait = 0, 0
for i = 2, #ARGV, 2 do
  local window, limit = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if window > longest then longest = window end
  local since = now - window + 1
  local count = redis.call('ZCOUNT', KEYS[1], since, '+inf')
  if count >= limit then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf', 'WITHSCORES', 'LIMIT', count - limit, 1)
    local free_at = tonumber(oldest[2]) + window
    if free_at - now > wait then wait = free_at - now end
  end
end
if wait > 0 then return {0, wait} end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
redis.call('PEXPIRE', KEYS[1], longest)
return {1, 0}
"""


def windows(settings: AlertSettings) -> list[tuple[int, int]]:
    """(seconds, limit) windows a member's messages must fit: the corp's burst, WeCom's two."""
    return [
        (settings.burst_seconds, settings.burst_limit),
        (60 + WINDOW_SLACK_SECONDS, WECOM_PER_MINUTE),
        (3600 + WINDOW_SLACK_SECONDS, WECOM_PER_HOUR),
    ]


def acquire(corp_id: int, userid: str, settings: AlertSettings) -> float:
    """Take a slot for one message to ``userid``: 0.0 when it may go now (the send is counted),
    else the seconds until a slot frees (nothing is counted)."""
    script = current_app.extensions.get("alerts_acquire_script")
    if script is None:
        script = current_app.extensions["alerts_acquire_script"] = get_redis().register_script(_ACQUIRE)
    args: list = [uuid.uuid4().hex]
    for seconds, limit in windows(settings):
        args += [seconds * 1000, limit]
    granted, wait_ms = script(keys=[f"alerts:rate:{corp_id}:{userid}"], args=args)
    return 0.0 if granted else max(int(wait_ms), 1) / 1000


# -- rendering -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """What a message needs of one alert."""

    kind: AlertKind
    customer_id: int | None
    title: str
    text: str
    link: str | None
    who: str
    what: str


# A customer's several alerts of one kind, said once: "read 3 items".
_MANY = {
    AlertKind.card_opened: "opened your card {n} times",
    AlertKind.content_read: "read {n} items",
    AlertKind.shared: "shared {n} times",
    AlertKind.share_viewed: "came through shares {n} times",
    AlertKind.contact_click: "tried to contact you {n} times",
}


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (with an ellipsis when cut)."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def url(base: str, path: str | None, lead_id: int) -> str:
    """The message's link. The batch id makes every message's content unique, so WeCom's
    duplicate check only ever drops a true re-send of the same batch."""
    target = path or INBOX_PATH
    if not target.startswith(("http://", "https://")):
        target = base.rstrip("/") + target
    return f"{target}{'&' if '?' in target else '?'}alert={lead_id}"


def summary_lines(items: list[Item]) -> list[str]:
    """One line per person: their alerts' phrases, same-kind ones counted."""
    people: OrderedDict[str, OrderedDict[AlertKind, list[str]]] = OrderedDict()
    for item in items:
        people.setdefault(item.who, OrderedDict()).setdefault(item.kind, []).append(item.what)
    lines = []
    for who, kinds in people.items():
        phrases = []
        for kind, whats in kinds.items():
            if len(whats) > 1 and kind in _MANY:
                phrases.append(_MANY[kind].format(n=len(whats)))
            else:
                phrases.extend(dict.fromkeys(whats))
        lines.append(" ".join(part for part in (who, ", ".join(p for p in phrases if p)) if part))
    return lines


def render(items: list[Item], lead_id: int, settings: AlertSettings, quiet: bool = False) -> dict:
    """The message/send body (msgtype and its content) for one batch of a member's alerts:
    the alert itself when alone, else a digest."""
    if len(items) == 1 and not quiet:
        item = items[0]
        title, description, link = item.title, item.text or item.title, item.link
    else:
        lines = summary_lines(items)
        customers = {i.customer_id for i in items}
        link = items[0].link if len(customers) == 1 and items[0].customer_id is not None else None
        names = ", ".join(dict.fromkeys(i.who for i in items))
        count = f"{len(items)} alert{'s' if len(items) != 1 else ''}"
        title = f"While you were away: {count}" if quiet else f"{count}: {names}"
        description = _fit(lines, DESCRIPTION_BYTES)
    return {
        "msgtype": "textcard",
        "textcard": {
            "title": clip(title, TITLE_BYTES),
            "description": clip(description, DESCRIPTION_BYTES),
            "url": url(settings.link_base_url, link, lead_id),
            "btntxt": BUTTON,
        },
    }


def _fit(lines: list[str], limit: int) -> str:
    """Join ``lines`` with "; " within ``limit`` bytes, saying how many did not fit."""
    out: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index - 1
        tail = f"; … and {rest} more" if rest else ""
        candidate = "; ".join([*out, line])
        if len((candidate + tail).encode()) > limit:
            more = len(lines) - len(out)
            return clip("; ".join(out), limit - 24) + f"; … and {more} more" if out else clip(line, limit)
        out.append(line)
    return "; ".join(out)
