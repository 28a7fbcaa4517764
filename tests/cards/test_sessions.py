"""Mini-program sessions: login through the simulator's jscode2session, device tokens and their
re-attribution, phone numbers, and every way a token can be bad."""

from datetime import timedelta

from sqlalchemy import select, update

from app.extensions import get_redis
from app.models import (
    CardShare,
    CardVisit,
    Customer,
    Identity,
    IdentityType,
    IntentLevelChange,
    IntentScore,
    MpSession,
    utcnow,
)
from app.services import signals
from tests.cards.conftest import Visitor, contents_of, ev
from wecom.client import call_stats
from wecom.wechat_client import MAX_TOKEN_REFRESHES


def _customer_of(db, openid):
    return db.session.scalar(
        select(Identity.customer_id).where(Identity.type == IdentityType.mp_openid, Identity.value == openid)
    )


def test_same_wechat_user_is_one_customer(visitor, db, sim, client):
    """Do two logins of one WeChat user resolve to one OneID customer holding openid and unionid?"""
    first = visitor.login(unionid="union-same-1")
    again = Visitor(client, sim, "10.1.0.2")
    again.login(unionid="union-same-1")
    customer_id = _customer_of(db, visitor.wechat["openid"])
    held = {(i.type, i.value) for i in db.session.get(Customer, customer_id).identities}
    assert held == {("mp_openid", visitor.wechat["openid"]), ("unionid", "union-same-1")}
    sessions = db.session.scalars(select(MpSession)).all()
    assert len(sessions) == 2 and {s.customer_id for s in sessions} == {customer_id}
    assert first["token"] != again.token and first["phone_verified"] is False


def test_login_answers_only_our_own_token(visitor, db):
    """Does the login answer carry our opaque token only — no openid, unionid or session_key — and store its hash?"""
    answer = visitor.login(unionid="union-secret-1")
    assert set(answer) == {"token", "expires_at", "kind", "phone_verified", "device_claimed"}
    assert visitor.wechat["openid"] not in str(answer) and "union-secret-1" not in str(answer)
    stored = db.session.scalar(select(MpSession.token_hash))
    assert stored != answer["token"] and answer["token"] not in stored


def test_bad_or_reused_code_is_refused(visitor, sim, db):
    """Is a forged or already used login code refused with 400, leaving no session behind?"""
    resp = visitor._call("POST", "/session", json={"code": "forged-code"}, auth=False)
    assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_code"
    visitor.login()
    reused = visitor._call("POST", "/session", json={"code": visitor.wechat["code"]}, auth=False)
    assert reused.status_code == 400
    assert db.session.query(MpSession).count() == 1


def test_wechat_outage_is_503(visitor, sim, db):
    """When WeChat fails (HTTP 500 on jscode2session), is the login answered 503 with nothing written?"""
    code = sim.control.mint_js_code()["code"]
    sim.control.set_faults(rate=1.0, errors=[500], side="wechat", paths=["sns/jscode2session"])
    resp = visitor._call("POST", "/session", json={"code": code}, auth=False)
    assert resp.status_code == 503 and resp.json["error"]["code"] == "wechat_unavailable"
    assert db.session.query(MpSession).count() == 0 and db.session.query(Customer).count() == 0


def test_bad_tokens_are_refused(visitor, card, db):
    """Are missing, forged, expired and revoked tokens all refused with 401?"""
    assert visitor.card(card.id).status_code == 401
    assert visitor._call("GET", f"/cards/{card.id}", token="forged-token").status_code == 401
    visitor.device()
    assert visitor.card(card.id).status_code == 200
    db.session.execute(update(MpSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    get_redis().flushdb()  # the cached session too, as after its cache lifetime
    expired = visitor.send(ev("card_view", card.id))
    assert expired.status_code == 401 and expired.json["error"]["code"] == "unauthorized"
    other = Visitor(visitor.client, address="10.1.0.3")
    other.device()
    assert other._call("DELETE", "/session").status_code == 204
    assert other.card(card.id).status_code == 401


def test_device_history_moves_to_the_customer(make_visitor, card, db, drain):
    """When an anonymous visitor logs in with their device token, do their visits, shares and
    intent become the customer's?"""
    visitor = make_visitor()
    visitor.device()
    price = contents_of(db, card)[0]
    resp = visitor.send(
        ev("card_view", card.id, at=-30),
        ev("content_view", card.id, price.id, at=-20),
        ev("share", card.id, at=-10),
    )
    assert resp.status_code == 202
    drain()
    assert db.session.scalar(select(CardVisit.customer_id).limit(1)) is None
    assert db.session.query(IntentScore).count() == 0
    answer = visitor.login(claim_device=True, unionid="union-device-1")
    assert answer["device_claimed"] is True
    customer_id = _customer_of(db, visitor.wechat["openid"])
    assert {v.customer_id for v in db.session.scalars(select(CardVisit))} == {customer_id}
    assert db.session.scalar(select(CardShare.customer_id)) == customer_id
    score = db.session.scalar(select(IntentScore))
    assert score.customer_id == customer_id and score.staff_id == card.staff_id and score.events == 3
    visitor.send(ev("click_phone", card.id))
    drain()
    db.session.expire_all()
    assert db.session.scalar(select(IntentScore.events)) == 4


def test_device_claimed_while_its_events_wait_in_the_stream(make_visitor, card, db, drain):
    """Are device events still queued at login time attributed to the customer when drained?"""
    visitor = make_visitor()
    visitor.device()
    assert visitor.send(ev("card_view", card.id, at=-5)).status_code == 202
    visitor.login(claim_device=True)
    drain()
    customer_id = _customer_of(db, visitor.wechat["openid"])
    assert db.session.scalar(select(CardVisit.customer_id)) == customer_id
    assert db.session.scalar(select(IntentScore.customer_id)) == customer_id


def test_device_is_claimed_once(make_visitor, card, db):
    """Can a device token already claimed by one customer be claimed again by another?"""
    first = make_visitor()
    first.device()
    device_token = first.token
    assert first.login(claim_device=True)["device_claimed"] is True
    second = make_visitor()
    second.token = device_token
    assert second.login(claim_device=True)["device_claimed"] is False


def test_phone_is_verified_and_linked(visitor, sim, db):
    """Does a getPhoneNumber code link the verified phone to the customer, and is it refused to a device token?"""
    visitor.device()
    assert visitor._call("POST", "/phone", json={"code": "x"}).status_code == 403
    visitor.login(unionid="union-phone-1")
    code = sim.control.mint_phone_code(unionid="union-phone-1", phone="13912345678")["code"]
    resp = visitor._call("POST", "/phone", json={"code": code})
    assert resp.status_code == 200, resp.json
    assert resp.json == {"phone": "+86 139****5678", "verified": True}
    phone = db.session.scalar(select(Identity).where(Identity.type == IdentityType.phone))
    assert phone.verified and phone.source == "mp_phone" and phone.value.endswith("13912345678")
    assert phone.customer_id == _customer_of(db, visitor.wechat["openid"])
    assert visitor._call("POST", "/phone", json={"code": code}).status_code == 400


def test_level_rise_reaches_hooks_after_commit(visitor, card, db, drain):
    """Are level changes handed to the registered hooks, once, after they are committed?"""
    heard = []

    def hook(change):
        with db.engine.connect() as other:  # another connection sees only committed rows
            stored = other.execute(select(IntentLevelChange.to_level).where(IntentLevelChange.id == change.change_id))
            heard.append((change.from_level, change.to_level, change.is_rise, stored.scalar()))

    signals.on_level_change(hook)
    try:
        visitor.login()
        visitor.send(ev("card_view", card.id, at=-3), ev("add_wecom", card.id, at=-2))
        drain()
    finally:
        signals.LEVEL_CHANGE_HOOKS.remove(hook)
    assert heard == [("cold", "warm", True, "warm")]


def test_phone_survives_a_revoked_wechat_token(visitor, sim, db, app):
    """When WeChat has revoked the cached mini-program token, is it refreshed and the call made once more?"""
    visitor.login(unionid="union-token-1")
    first = sim.control.mint_phone_code(unionid="union-token-1", phone="13900000001")["code"]
    assert visitor._call("POST", "/phone", json={"code": first}).status_code == 200
    assert sim.control.invalidate_tokens(area="wechat") >= 1
    second = sim.control.mint_phone_code(unionid="union-token-1", phone="13900000002")["code"]
    assert visitor._call("POST", "/phone", json={"code": second}).status_code == 200
    stats = call_stats(app.extensions["redis"])
    assert stats["wxa/business/getuserphonenumber"]["err:40001"] == 1
    assert stats["cgi-bin/token"]["count"] == 2


def test_token_refresh_is_bounded(visitor, sim, app):
    """If WeChat keeps rejecting fresh tokens, does the phone call give up after a bounded number of refreshes?"""
    visitor.login(unionid="union-token-2")
    code = sim.control.mint_phone_code(unionid="union-token-2")["code"]
    sim.control.set_faults(rate=1.0, errors=[40001], side="wechat", paths=["wxa/business/getuserphonenumber"])
    resp = visitor._call("POST", "/phone", json={"code": code})
    assert resp.status_code == 502 and resp.json["error"]["code"] == "wechat_error"
    stats = call_stats(app.extensions["redis"])
    assert stats["wxa/business/getuserphonenumber"]["count"] == MAX_TOKEN_REFRESHES + 1


def test_login_racing_a_oneid_writer_is_409_and_writes_nothing(visitor, sim, db, app):
    """When another transaction holds the visitor's OneID lock, is the login answered 409 (the
    client retries) within the lock timeout, with nothing written — never a hang or a 500?"""
    from sqlalchemy import create_engine, text

    from app.models import IdentityType
    from app.services import corps, oneid

    app.config["ONEID_API_LOCK_TIMEOUT_MS"] = 200
    minted = sim.control.mint_js_code(openid="o-busy")
    key = oneid.identity_key(corps.env_corp_id(), (IdentityType.mp_openid, "o-busy"))
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with other.connect() as conn, conn.begin():
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        resp = visitor._call("POST", "/session", json={"code": minted["code"]}, auth=False)
    other.dispose()
    assert resp.status_code == 409 and resp.json["error"]["code"] == "busy"
    assert db.session.query(MpSession).count() == 0 and db.session.query(Customer).count() == 0
