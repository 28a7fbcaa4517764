"""POST /mp/v1/events: validation, idempotency, rate limits, and what the drainer makes of the
events — dwell, presence, share chains — including after a crash."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import get_redis
from app.models import CardEvent, CardShare, CardVisit, IntentScore, utcnow
from app.services.signals import consumer as drainer
from app.services.signals.ingest import GROUP, STREAM
from tests import factories
from tests.cards.conftest import contents_of, ev, make_card


def _queued():
    return get_redis().xlen(STREAM)


# -- validation -------------------------------------------------------------------------------
BAD_BATCHES = {
    "unknown type": lambda c, i: [ev("wink", c)],
    "too many events": lambda c, i: [ev("heartbeat", c) for _ in range(51)],
    "empty batch": lambda c, i: [],
    "far future": lambda c, i: [ev("card_view", c, at=3600)],
    "far past": lambda c, i: [ev("card_view", c, at=-3 * 86400)],
    "ts not a number": lambda c, i: [{**ev("card_view", c), "ts": "yesterday"}],
    "unknown card": lambda c, i: [ev("card_view", c), ev("card_view", 999_999)],
    "content of another card": lambda c, i: [ev("content_view", c, i)],
    "content_view without content": lambda c, i: [ev("content_view", c)],
    "duplicate id in batch": lambda c, i: [ev("card_view", c, id="same"), ev("heartbeat", c, id="same")],
    "malformed share id": lambda c, i: [ev("card_view", c, share_id="not-a-share")],
    "share id on a click": lambda c, i: [ev("click_phone", c, share_id="a" * 20)],
    "bad client id": lambda c, i: [ev("card_view", c, id="has spaces")],
}


def test_bad_batches_are_refused_whole(visitor, card, db, corp, app):
    """Is a batch with any bad event refused with a 422 naming the problem, and nothing queued?"""
    app.config["MP_RATE_PER_TOKEN"] = 100
    other = make_card(db, corp, factories.staff(corp))
    visitor.device()
    for case, build in BAD_BATCHES.items():
        resp = visitor.send(*build(card.id, contents_of(db, other)[0].id))
        assert resp.status_code == 422 and resp.json["error"]["fields"], case
    assert _queued() == 0


def test_non_json_and_oversized_bodies(visitor, card):
    """Are a non-JSON body (400) and an oversized body (413) refused before anything is queued?"""
    visitor.device()
    garbage = visitor._call("POST", "/events", data=b"not json", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400
    huge = visitor._call("POST", "/events", data=b"x" * 70_000, headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    assert _queued() == 0


def test_full_queue_refuses_instead_of_acknowledging(visitor, card, app):
    """When the stream holds the most batches allowed, is the next batch refused with 503, not acknowledged?"""
    app.config["MP_MAX_QUEUED_BATCHES"] = 1
    visitor.device()
    assert visitor.send(ev("card_view", card.id)).status_code == 202
    refused = visitor.send(ev("heartbeat", card.id))
    assert refused.status_code == 503 and refused.json["error"]["code"] == "overloaded"
    assert _queued() == 1


# -- idempotency ------------------------------------------------------------------------------
def test_retried_batches_count_once(visitor, card, db, drain):
    """Does a batch sent again — before and after it was drained — count once in events, visits and intent?"""
    visitor.login()
    batch = [ev("card_view", card.id, at=-20), ev("heartbeat", card.id, at=-10), ev("share", card.id, at=-5)]
    first = visitor.send(*batch)
    assert visitor.send(*batch).json == first.json  # same share id for the same share event
    drain()
    assert visitor.send(*batch).status_code == 202
    drain()
    assert db.session.query(CardEvent).count() == 3
    assert db.session.query(CardShare).count() == 1
    visit = db.session.scalar(select(CardVisit))
    assert visit.dwell_seconds == pytest.approx(15, abs=0.01)
    assert db.session.scalar(select(IntentScore.events)) == 3


# -- rate limits ------------------------------------------------------------------------------
def test_rate_limit_per_token(make_visitor, card, app):
    """Past the per-token rate, is a token answered 429 with Retry-After while another token still works?"""
    app.config["MP_RATE_PER_TOKEN"] = 3
    visitor, other = make_visitor(), make_visitor()
    visitor.device()
    other.device()
    answers = [visitor.send(ev("heartbeat", card.id)).status_code for _ in range(4)]
    assert answers == [202, 202, 202, 429]
    limited = visitor.send(ev("heartbeat", card.id))
    assert limited.json["error"]["code"] == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 61
    assert other.send(ev("heartbeat", card.id)).status_code == 202
    assert _queued() == 4


def test_rate_limit_per_address(make_visitor, card, app):
    """Past the per-address rate, are even new device tokens and forged tokens refused with 429?"""
    app.config["MP_RATE_PER_IP"] = 3
    visitor = make_visitor()
    visitor.device()
    visitor.send(ev("heartbeat", card.id))
    visitor._call("GET", f"/cards/{card.id}", token="forged")
    assert visitor._call("POST", "/device").status_code == 429
    assert make_visitor()._call("POST", "/device").status_code == 201  # another address


# -- dwell and visits ---------------------------------------------------------------------------
def test_dwell_from_heartbeats_survives_a_lost_leave(visitor, card, db, drain):
    """Without a leave, does a visit end at its last heartbeat, and a long silence start a new visit?"""
    visitor.device()
    price = contents_of(db, card)[0]
    visitor.send(
        ev("card_view", card.id, at=-600),
        *[ev("heartbeat", card.id, at=-600 + 10 * i) for i in range(1, 7)],  # 60 s on the card
        ev("content_view", card.id, price.id, at=-530),
        *[ev("heartbeat", card.id, price.id, at=-530 + 10 * i) for i in range(1, 4)],  # 30 s on the item
        # no leave; five minutes later the visitor comes back
        ev("heartbeat", card.id, at=-200),
        ev("heartbeat", card.id, at=-190),
        ev("leave", card.id, at=-185),
    )
    drain()
    visits = db.session.scalars(select(CardVisit).order_by(CardVisit.started_at, CardVisit.id)).all()
    card_visits = [v for v in visits if v.content_id is None]
    assert [v.dwell_seconds for v in card_visits] == [100, 15]
    assert card_visits[0].ended_at is None and card_visits[1].ended_at is not None
    assert [v.dwell_seconds for v in visits if v.content_id == price.id] == [30]


def test_a_leave_never_opens_a_visit(visitor, card, db, drain):
    """Does a late leave (the visit already over) leave the visits alone instead of counting a view?"""
    visitor.device()
    visitor.send(ev("card_view", card.id, at=-300), ev("heartbeat", card.id, at=-290), ev("leave", card.id, at=-10))
    drain()
    assert [v.dwell_seconds for v in db.session.scalars(select(CardVisit))] == [10]


# -- presence ---------------------------------------------------------------------------------
def test_presence_follows_heartbeats_and_leave(make_visitor, card, db, drain, client, api_auth):
    """Is a visitor shown on the card while heartbeats come, and gone after leave or silence?"""
    reader, leaver = make_visitor(), make_visitor()
    reader.login()
    leaver.device()
    price = contents_of(db, card)[0]
    reader.send(ev("card_view", card.id, at=-3), ev("heartbeat", card.id, price.id, at=-1))
    leaver.send(ev("card_view", card.id, at=-2))
    drain()
    headers = api_auth.headers("admin")
    here = client.get(f"/api/v1/cards/{card.id}/presence", headers=headers).json
    assert len(here) == 2
    by_customer = {p["customer_id"]: p for p in here}
    assert by_customer[None]["customer_name"] == "" and len(by_customer) == 2
    known = next(p for p in here if p["customer_id"])
    assert known["content_id"] == price.id
    leaver.send(ev("leave", card.id))
    drain()
    here = client.get(f"/api/v1/cards/{card.id}/presence", headers=headers).json
    assert [p["customer_id"] for p in here] == [known["customer_id"]]
    # Silence: the presence lapses on its own (its expiry moved into the past, as time would).
    get_redis().zadd(f"presence:card:{card.id}", {str(known["session_id"]): 1.0})
    assert client.get(f"/api/v1/cards/{card.id}/presence", headers=headers).json == []


def test_old_events_do_not_make_anyone_present(visitor, card, drain, client, admin_headers):
    """Do events from minutes ago (a replayed offline buffer) leave presence empty?"""
    visitor.device()
    visitor.send(ev("card_view", card.id, at=-600), ev("heartbeat", card.id, at=-590))
    drain()
    assert client.get(f"/api/v1/cards/{card.id}/presence", headers=admin_headers).json == []


# -- share chains -------------------------------------------------------------------------------
def test_share_chain_three_levels_deep(make_visitor, card, db, drain, client, admin_headers):
    """When A shares, B arrives through it and shares, C through B's and shares, D through C's:
    does the forward tree link them with depths 1-2-3 and count who each share brought?"""
    a, b, c, d = (make_visitor() for _ in range(4))
    for person in (a, b, c, d):
        person.login()
    a_share = a.send(ev("card_view", card.id, at=-50), ev("share", card.id, at=-49, id="a-share"))
    drain()
    code_a = a_share.json["shares"]["a-share"]
    code_b = b.send(ev("card_view", card.id, at=-40, share_id=code_a), ev("share", card.id, at=-39, id="s")).json[
        "shares"
    ]["s"]
    code_c = c.send(ev("card_view", card.id, at=-30, share_id=code_b), ev("share", card.id, at=-29, id="s")).json[
        "shares"
    ]["s"]
    d.send(ev("card_view", card.id, at=-20, share_id=code_c))
    # A opening their own link again is not a forward.
    a.send(ev("card_view", card.id, at=-10, share_id=code_a))
    drain()
    tree = client.get(f"/api/v1/cards/{card.id}/shares", headers=admin_headers).json
    nodes = [(n["code"], n["parent_code"], n["depth"], n["visits"], n["visitors"]) for n in tree["items"]]
    assert nodes == [(code_a, None, 1, 1, 1), (code_b, code_a, 2, 1, 1), (code_c, code_b, 3, 1, 1)]
    stats = client.get(f"/api/v1/cards/{card.id}/stats", headers=admin_headers).json
    assert stats["shares"] == 3 and stats["forward_depth"] == 3


def test_share_chains_within_one_drain(make_visitor, card, db, drain, client, admin_headers):
    """Are parents found when a share, the visit through it and the next share are all drained together?"""
    a, b, c = (make_visitor() for _ in range(3))
    for person in (a, b, c):
        person.device()
    code_a = a.send(ev("share", card.id, at=-30, id="s")).json["shares"]["s"]
    code_b = b.send(ev("card_view", card.id, at=-20, share_id=code_a), ev("share", card.id, at=-19, id="s")).json[
        "shares"
    ]["s"]
    c.send(ev("card_view", card.id, at=-10, share_id=code_b))
    drain()
    depths = dict(db.session.execute(select(CardShare.code, CardShare.depth)).all())
    assert depths == {code_a: 1, code_b: 2}
    assert db.session.scalar(select(CardVisit.via_share_code).where(CardVisit.session_id == 3)) == code_b


def test_forged_share_ids_are_ignored(visitor, card, db, drain):
    """Does a well-formed share id that no share ever produced attribute nothing?"""
    visitor.device()
    visitor.send(ev("card_view", card.id, share_id="abcdefghijklmnopqrst"))
    drain()
    assert db.session.scalar(select(CardVisit.via_share_code)) is None


def test_content_forward_tree_is_its_own(make_visitor, card, db, drain, client, admin_headers):
    """Is a content item's share tree kept apart from the card's?"""
    price = contents_of(db, card)[0]
    a, b = make_visitor(), make_visitor()
    a.device()
    b.device()
    code = a.send(ev("content_view", card.id, price.id, at=-9), ev("share", card.id, price.id, at=-8, id="s")).json[
        "shares"
    ]["s"]
    b.send(ev("content_view", card.id, price.id, at=-5, share_id=code))
    drain()
    own = client.get(f"/api/v1/cards/{card.id}/shares", headers=admin_headers).json
    item = client.get(f"/api/v1/cards/{card.id}/shares?content_id={price.id}", headers=admin_headers).json
    assert own["total"] == 0 and [(n["code"], n["visits"]) for n in item["items"]] == [(code, 1)]


# -- stats ----------------------------------------------------------------------------------------
def test_stats_over_a_date_range(make_visitor, card, db, drain, client, admin_headers):
    """Are views, unique visitors, average dwell, shares and top content computed for the range asked?"""
    price, brochure = contents_of(db, card)
    first, second = make_visitor(), make_visitor()
    first.login()
    second.device()
    first.send(
        ev("card_view", card.id, at=-100),
        ev("heartbeat", card.id, at=-80),
        ev("leave", card.id, at=-70),
        ev("card_view", card.id, at=-30),
        ev("content_view", card.id, price.id, at=-29),
        ev("heartbeat", card.id, price.id, at=-19),
        ev("share", card.id, price.id, at=-18),
    )
    second.send(
        ev("card_view", card.id, at=-60),
        ev("content_view", card.id, brochure.id, at=-59),
        ev("content_view", card.id, price.id, at=-50),
        ev("heartbeat", card.id, price.id, at=-46),
    )
    drain()
    stats = client.get(f"/api/v1/cards/{card.id}/stats", headers=admin_headers).json
    assert (stats["views"], stats["unique_visitors"]) == (3, 2)
    assert stats["avg_dwell_seconds"] == pytest.approx((30 + 12 + 14) / 3, abs=0.1)  # a share counts as presence
    assert stats["shares"] == 1 and stats["forward_depth"] == 1
    top = [(t["title"], t["views"], t["unique_visitors"], t["shares"]) for t in stats["top_content"]]
    assert top == [(price.title, 2, 2, 1), (brochure.title, 1, 1, 0)]
    one = client.get(f"/api/v1/cards/{card.id}/contents/{price.id}/stats", headers=admin_headers).json
    assert (one["views"], one["avg_dwell_seconds"], one["shares"]) == (2, 7.5, 1)
    until = (utcnow() - timedelta(days=1)).isoformat()
    empty = client.get(f"/api/v1/cards/{card.id}/stats", query_string={"until": until}, headers=admin_headers).json
    assert (empty["views"], empty["shares"], empty["top_content"]) == (0, 0, [])
    backwards = {"since": utcnow().isoformat(), "until": until}
    assert (
        client.get(f"/api/v1/cards/{card.id}/stats", query_string=backwards, headers=admin_headers).status_code == 422
    )


# -- the drainer under failure ------------------------------------------------------------------
def test_batches_of_a_crashed_drainer_are_replayed(visitor, card, db, drain):
    """If a drainer read batches and died before acknowledging them, does the next drain store them once?"""
    visitor.device()
    visitor.send(ev("card_view", card.id, at=-10), ev("heartbeat", card.id, at=-5))
    redis = get_redis()
    drainer._ensure_group(redis)
    taken = redis.xreadgroup(GROUP, drainer.CONSUMER, {STREAM: ">"}, count=10)  # read, then "crash"
    assert len(taken[0][1]) == 1
    drain()
    assert db.session.query(CardEvent).count() == 2
    assert redis.xpending(STREAM, GROUP)["pending"] == 0


def test_a_poison_batch_is_set_aside_not_lost(visitor, card, db, drain):
    """Is a stream entry that cannot be processed moved to the dead-letter stream while the others are stored?"""
    visitor.device()
    visitor.send(ev("card_view", card.id, at=-10))
    redis = get_redis()
    redis.xadd(STREAM, {"s": "1", "c": "1", "r": "0", "e": json.dumps([["x", "no-such-type", 0, card.id, None, None]])})
    visitor.send(ev("heartbeat", card.id, at=-5))
    drain()
    assert db.session.query(CardEvent).count() == 2
    dead = redis.xrange("cards:events:dead")
    assert len(dead) == 1 and b"no-such-type" in dead[0][1][b"e"] and dead[0][1][b"error"]
