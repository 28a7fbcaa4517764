"""The write path of mini-program events: validate, append the batch to a Redis Stream, answer.

A request costs one Lua call on Redis (XADD plus the "drain pending" flag) and no database
write: the stream is the queue of record (production Redis runs with AOF), and the drainer
(``consumer.py``) bulk-inserts into PostgreSQL and updates the aggregates. The stream's length is
bounded: past ``MP_MAX_QUEUED_BATCHES`` the request is refused with 503 rather than acknowledged,
so an acknowledged batch is never one Redis had to drop.

Share ids are an HMAC of (session, client event id): a retried ``share`` event gets the same id,
and nobody can mint an id that the drainer would accept as a real share.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select

from app.errors import ApiError
from app.extensions import db, get_redis
from app.models import Card, CardEventType, ContentItem

log = logging.getLogger(__name__)

STREAM = "cards:events"
GROUP = "signals"
# Set by the request that finds no drain pending; cleared by the drainer when the stream is empty.
DRAIN_FLAG = "cards:events:drain-pending"
DRAIN_FLAG_TTL = 30  # a lost drain job only delays draining until the flag expires (or the periodic drain)
# Past MP_MAX_QUEUED_BATCHES (config.py) batches waiting in the stream, requests are refused
# (503) instead of queued: a drainer that has stopped must not let Redis grow until it evicts or dies.
# How long a process trusts its cached list of a card's content ids.
CARD_REF_TTL = 30.0

_APPEND = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return {0, 0} end
local id = redis.call('XADD', KEYS[1], '*', 's', ARGV[2], 'c', ARGV[3], 'r', ARGV[4], 'e', ARGV[5])
local flag = redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[6])
if flag then return {id, 1} end
return {id, 0}
"""


@dataclass(frozen=True)
class Accepted:
    accepted: int
    shares: dict[str, str]


def share_code(session_id: int, client_event_id: str) -> str:
    """The share id of a ``share`` event: deterministic, unforgeable, 20 base32 characters."""
    digest = hmac.new(
        current_app.config["SECRET_KEY"].encode(), f"share:{session_id}:{client_event_id}".encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest[:15]).decode().lower()[:20]


def ingest(corp_id: int, session_id: int, events: list[dict]) -> Accepted:
    """Queue a validated batch of one session's events; 422 for cards or content unknown to
    the corp (nothing queued), 503 when the queue is full."""
    _check_refs(corp_id, events)
    shares: dict[str, str] = {}
    compact = []
    for event in events:
        if event["type"] == CardEventType.share:
            code = shares[event["id"]] = share_code(session_id, event["id"])
        else:
            code = event.get("share_id")
        compact.append([event["id"], str(event["type"]), event["ts"], event["card_id"], event.get("content_id"), code])
    result = _append_script()(
        keys=[STREAM, DRAIN_FLAG],
        args=[
            current_app.config["MP_MAX_QUEUED_BATCHES"],
            session_id,
            corp_id,
            int(time.time() * 1000),
            json.dumps(compact, separators=(",", ":")),
            DRAIN_FLAG_TTL,
        ],
    )
    if result[0] == 0:
        raise ApiError(503, "overloaded", "too many events are waiting to be processed; retry shortly")
    if result[1]:
        trigger_drain()
    return Accepted(len(events), shares)


def trigger_drain() -> None:
    """Enqueue a drain job. A failure is logged, not raised: the batch is already in the stream
    and the periodic drain picks it up."""
    from app.services.signals.consumer import drain_job
    from jobs.queues import enqueue

    try:
        enqueue(drain_job, queue="high")
    except RedisError:
        log.exception("could not enqueue the card event drain; the periodic drain will run it")


def _append_script():
    script = current_app.extensions.get("cards_append_script")
    if script is None:
        script = current_app.extensions["cards_append_script"] = get_redis().register_script(_APPEND)
    return script


def _check_refs(corp_id: int, events: list[dict]) -> None:
    errors: dict[int, dict[str, list[str]]] = {}
    for index, event in enumerate(events):
        refs = _card_refs(event["card_id"])
        if refs is None or refs[0] != corp_id:
            errors[index] = {"card_id": ["unknown card"]}
        elif event.get("content_id") is not None and event["content_id"] not in refs[1]:
            refs = _card_refs(event["card_id"], refresh=True)  # content added since we cached the card
            if refs is None or event["content_id"] not in refs[1]:
                errors[index] = {"content_id": ["unknown content item of this card"]}
    if errors:
        raise ApiError(422, "validation_error", "the request has invalid fields", {"events": errors})


def _card_refs(card_id: int, refresh: bool = False) -> tuple[int, frozenset[int]] | None:
    """(corp_id, content ids) of a card, cached per process for ``CARD_REF_TTL``."""
    cache: dict = current_app.extensions.setdefault("card_refs", {})
    hit = cache.get(card_id)
    now = time.monotonic()
    if hit and hit[0] > now and not refresh:
        return hit[1]
    corp_id = db.session.scalar(select(Card.corp_id).where(Card.id == card_id))
    if corp_id is None:
        return None  # not cached: the id may be a card created a moment from now
    contents = db.session.scalars(select(ContentItem.id).where(ContentItem.card_id == card_id)).all()
    refs = (corp_id, frozenset(contents))
    cache[card_id] = (now + CARD_REF_TTL, refs)
    return refs
