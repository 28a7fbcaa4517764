"""The whole path against the simulator: login → card → events → drain → intent."""

from sqlalchemy import select

from app.models import CardEvent, Customer, Identity, IdentityType, MpSession
from app.services import signals
from tests import factories
from tests.cards.conftest import contents_of, ev


def test_login_card_events_score(visitor, card, db, drain, client, api_auth, rep):
    """Does a logged-in visitor's reading of a card show up as visits, dwell and a rising intent score?"""
    answer = visitor.login(unionid="union-flow-1")
    assert answer["kind"] == "user" and "openid" not in str(answer) and "session_key" not in str(answer)
    session = db.session.scalar(select(MpSession))
    assert session.token_hash != visitor.token and len(session.token_hash) == 64
    customer_id = db.session.scalar(
        select(Identity.customer_id).where(
            Identity.type == IdentityType.mp_openid, Identity.value == visitor.wechat["openid"]
        )
    )
    assert customer_id == session.customer_id
    shown = visitor.card(card.id)
    assert shown.status_code == 200 and shown.json["id"] == card.id
    price = contents_of(db, card)[0]
    resp = visitor.send(
        ev("card_view", card.id, at=-60),
        ev("content_view", card.id, price.id, at=-55),
        *[ev("heartbeat", card.id, price.id, at=-55 + 5 * i) for i in range(1, 10)],
        ev("click_phone", card.id, at=-5),
        ev("leave", card.id, at=-4),
    )
    assert resp.status_code == 202, resp.json
    assert resp.json["accepted"] == 13
    drain()
    assert db.session.query(CardEvent).count() == 13
    headers = api_auth.headers("admin")
    intents = client.get(f"/api/v1/cards/intents?customer_id={customer_id}", headers=headers).json["items"]
    assert len(intents) == 1 and intents[0]["staff_id"] == rep.id
    assert intents[0]["score"] > 10 and intents[0]["level"] == "warm"
    visits = client.get(f"/api/v1/cards/visits?customer_id={customer_id}", headers=headers).json["items"]
    card_visit = next(v for v in visits if v["content_id"] is None)
    assert card_visit["ended_at"] is not None and 55 <= card_visit["dwell_seconds"] <= 57
    history = client.get(f"/api/v1/cards/intents/history?customer_id={customer_id}", headers=headers).json["items"]
    assert [(h["from_level"], h["to_level"]) for h in history] == [("cold", "warm")]


def test_card_signals_on_the_customer_timeline(visitor, card, db, drain, client, api_auth, corp, rep):
    """Do the visitor's card visits, shares and level changes appear on their timeline — to the
    card's rep, and not to another rep?"""
    visitor.login()
    price = contents_of(db, card)[0]
    visitor.send(
        ev("card_view", card.id, at=-30),
        ev("content_view", card.id, price.id, at=-20),
        ev("heartbeat", card.id, price.id, at=-10),
        ev("share", card.id, price.id, at=-9),
        ev("add_wecom", card.id, at=-8),
    )
    drain()
    customer_id = db.session.scalar(select(MpSession.customer_id))
    factories.follow(corp, rep, db.session.get(Customer, customer_id))
    other = factories.staff(corp)
    factories.follow(corp, other, db.session.get(Customer, customer_id))
    mine = client.get(f"/api/v1/customers/{customer_id}/timeline", headers=api_auth.headers("rep", staff_id=rep.id))
    kinds = {(e["kind"], e["detail"]) for e in mine.json["items"]}
    assert ("content_visit", f"{price.title} · 11 s") in kinds
    assert ("card_visit", f"{card.display_name} · 22 s") in kinds
    assert ("card_share", f"{price.title} · depth 1") in kinds
    assert ("intent_level", "cold→warm (add_wecom)") in kinds
    theirs = client.get(f"/api/v1/customers/{customer_id}/timeline", headers=api_auth.headers("rep", staff_id=other.id))
    assert not {e["kind"] for e in theirs.json["items"]} & {"card_visit", "content_visit", "card_share", "intent_level"}


def test_activity_hooks_hear_attributed_events_but_not_heartbeats(make_visitor, card, drain):
    """Are committed, attributed card events (not heartbeats, not anonymous ones) handed to activity hooks?"""
    heard = []
    signals.on_activity(heard.extend)
    try:
        known, anonymous = make_visitor(), make_visitor()
        known.login()
        anonymous.device()
        known.send(ev("card_view", card.id, at=-3), ev("heartbeat", card.id, at=-2), ev("copy_wechat", card.id, at=-1))
        anonymous.send(ev("card_view", card.id, at=-3))
        drain()
    finally:
        signals.ACTIVITY_HOOKS.remove(heard.extend)
    assert [(str(a.type), a.card_id, a.staff_id) for a in heard] == [
        ("card_view", card.id, card.staff_id),
        ("copy_wechat", card.id, card.staff_id),
    ]
