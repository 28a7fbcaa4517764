"""Presence: who is on which card right now, in Redis, expiring on its own.

Per card, a sorted set of session ids scored by the time their presence runs out (the last
event's time plus ``PRESENCE_TTL``), and a hash with what each one is looking at. Heartbeats
push the expiry forward; ``leave`` removes the session at once; a lost ``leave`` only means the
visitor fades out ``PRESENCE_TTL`` seconds after their last heartbeat.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from app.extensions import get_redis

PRESENCE_TTL = 30


@dataclass(frozen=True)
class Seen:
    """A session's latest event on a card, as the drainer saw it."""

    card_id: int
    session_id: int
    customer_id: int | None
    content_id: int | None
    at: float  # epoch seconds
    left: bool  # the visitor left the card


def _keys(card_id: int) -> tuple[str, str]:
    return f"presence:card:{card_id}", f"presence:card:{card_id}:info"


def record(seen: list[Seen]) -> None:
    """Apply the latest event of each (card, session); old events (replays) are ignored."""
    now = time.time()
    pipe = get_redis().pipeline(transaction=False)
    for item in seen:
        members, info = _keys(item.card_id)
        if item.left:
            pipe.zrem(members, item.session_id)
            pipe.hdel(info, item.session_id)
            continue
        expires = min(item.at, now) + PRESENCE_TTL
        if expires <= now:
            continue
        pipe.zadd(members, {item.session_id: expires})
        pipe.hset(info, item.session_id, json.dumps({"customer_id": item.customer_id, "content_id": item.content_id}))
        pipe.expire(members, PRESENCE_TTL * 4)
        pipe.expire(info, PRESENCE_TTL * 4)
    pipe.execute()


def on_card(card_id: int) -> list[dict]:
    """The sessions on ``card_id`` now: [{session_id, customer_id, content_id, until}]."""
    redis = get_redis()
    members, info = _keys(card_id)
    now = time.time()
    expired = redis.zrangebyscore(members, "-inf", now)
    if expired:
        pipe = redis.pipeline()
        pipe.zremrangebyscore(members, "-inf", now)
        pipe.hdel(info, *expired)
        pipe.execute()
    live = redis.zrangebyscore(members, now, "+inf", withscores=True)
    if not live:
        return []
    details = redis.hmget(info, [m for m, _ in live])
    result = []
    for (member, until), detail in zip(live, details, strict=True):
        data = json.loads(detail) if detail else {}
        result.append(
            {
                "session_id": int(member),
                "customer_id": data.get("customer_id"),
                "content_id": data.get("content_id"),
                "until": until,
            }
        )
    return result


def customer_on(card_ids: list[int], customer_ids: set[int]) -> list[dict]:
    """Where any of ``customer_ids`` is right now among ``card_ids``: [{card_id, session_id,
    content_id, until}] (one Redis round trip; expired entries are skipped, not cleaned)."""
    if not card_ids or not customer_ids:
        return []
    now = time.time()
    pipe = get_redis().pipeline(transaction=False)
    for card_id in card_ids:
        members, info = _keys(card_id)
        pipe.zrangebyscore(members, now, "+inf", withscores=True)
        pipe.hgetall(info)
    replies = pipe.execute()
    result = []
    for card_id, live, details in zip(card_ids, replies[::2], replies[1::2], strict=True):
        for member, until in live:
            data = json.loads(details.get(member) or "{}")
            if data.get("customer_id") in customer_ids:
                result.append(
                    {
                        "card_id": card_id,
                        "session_id": int(member),
                        "content_id": data.get("content_id"),
                        "until": until,
                    }
                )
    return result
