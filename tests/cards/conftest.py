"""Card fixtures: reps with cards, a mini-program visitor that logs in through the simulator,
and a helper that drains the event stream with a real RQ worker."""

from __future__ import annotations

import itertools
import time

import pytest
from sqlalchemy import select

from app.models import Card, ContentItem
from tests import factories

_ids = itertools.count(1)


def now_ms(offset_seconds: float = 0) -> int:
    return int((time.time() + offset_seconds) * 1000)


def ev(type_, card_id, content_id=None, at=None, share_id=None, id=None):
    """One mini-program event; ``at`` is seconds relative to now (default now)."""
    event = {"id": id or f"e{next(_ids)}", "type": type_, "ts": now_ms(at or 0), "card_id": card_id}
    if content_id is not None:
        event["content_id"] = content_id
    if share_id is not None:
        event["share_id"] = share_id
    return event


class Visitor:
    """A WeChat user in the mini-program: a device token, then (optionally) a login."""

    def __init__(self, client, sim=None, address="10.1.0.1"):
        # ``sim`` may be a callable that starts the simulator on first use: only logins need it.
        self.client, self._sim, self.address = client, sim, address
        self.token = None
        self.wechat = None

    def _call(self, method, path, token=None, auth=True, **kwargs):
        headers = kwargs.pop("headers", {})
        token = token or self.token
        if token and auth:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(
            f"/mp/v1{path}", method=method, headers=headers, environ_base={"REMOTE_ADDR": self.address}, **kwargs
        )

    def device(self):
        resp = self._call("POST", "/device")
        assert resp.status_code == 201, resp.json
        self.token = resp.json["token"]
        return self.token

    @property
    def sim(self):
        return self._sim() if callable(self._sim) else self._sim

    def login(self, claim_device=False, **who):
        self.wechat = self.sim.control.mint_js_code(**who)
        body = {"code": self.wechat["code"]}
        if claim_device:
            body["device_token"] = self.token
        resp = self._call("POST", "/session", json=body, auth=False)
        assert resp.status_code == 201, resp.json
        self.token = resp.json["token"]
        return resp.json

    def card(self, card_id):
        return self._call("GET", f"/cards/{card_id}")

    def send(self, *events, token=None):
        return self._call("POST", "/events", json={"events": list(events)}, token=token)


@pytest.fixture(autouse=True)
def offline_wecom(app):
    """Tests that start no simulator must never reach the real WeCom or WeChat (other features'
    jobs, e.g. alerts reacting to card activity, may call them): point both at a closed port.
    The ``sim`` fixture, when used, points them at the simulator instead."""
    app.config["WECOM_API_BASE"] = "http://127.0.0.1:9/cgi-bin/"
    app.config["WECHAT_API_BASE"] = "http://127.0.0.1:9/"


@pytest.fixture
def visitor(client, request):
    return Visitor(client, lambda: request.getfixturevalue("sim"))


@pytest.fixture
def make_visitor(client, request):
    addresses = (f"10.2.0.{n}" for n in itertools.count(1))
    return lambda: Visitor(client, lambda: request.getfixturevalue("sim"), next(addresses))


@pytest.fixture
def drain(run_jobs):
    """Run the queued drain jobs (a real RQ worker); the stream is then empty."""
    from app.extensions import get_redis
    from app.services.signals.ingest import STREAM

    def run():
        run_jobs()
        assert get_redis().xlen(STREAM) == 0

    return run


@pytest.fixture
def rep(corp):
    return factories.staff(corp, userid="zhangwei", name="张伟")


def make_card(db, corp, staff, contents=("价格表 Price sheet", "产品手册 Brochure")) -> Card:
    card = Card(
        corp_id=corp.id,
        staff_id=staff.id,
        display_name=staff.name,
        title="销售经理",
        company="Demo",
        phone="13800000001",
        wechat="zw-demo",
        contact_way_state="card:x",
    )
    db.session.add(card)
    db.session.flush()
    card.contact_way_state = f"card:{card.id}"
    for position, title in enumerate(contents, start=1):
        db.session.add(
            ContentItem(
                corp_id=corp.id,
                card_id=card.id,
                kind="article",
                title=title,
                url=f"https://example.com/{position}",
                position=position,
            )
        )
    db.session.commit()
    return card


@pytest.fixture
def card(db, corp, rep):
    return make_card(db, corp, rep)


def contents_of(db, card):
    return db.session.scalars(select(ContentItem).where(ContentItem.card_id == card.id).order_by(ContentItem.id)).all()
