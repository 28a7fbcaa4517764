"""Alert test helpers: reps who exist both in the simulator and in our database, cards and
logged-in visitors, card events through the real signals pipeline, and settling the outbox."""

from __future__ import annotations

import itertools
import secrets
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db as _db
from app.models import (
    Alert,
    AlertDelivery,
    Card,
    ContentItem,
    ContentKind,
    Customer,
    DeliveryState,
    MpSession,
    SessionKind,
    Staff,
    utcnow,
)
from app.models.alert import FINAL_DELIVERY_STATES
from app.services import signals
from app.services.alerts import outbox

_seq = itertools.count(1)


class World:
    """Builds what an alert needs and drives the pipeline to a settled state."""

    def __init__(self, sim, corp, run_jobs):
        self.sim, self.corp, self.run_jobs = sim, corp, run_jobs

    def rep(self, userid: str | None = None, name: str | None = None) -> Staff:
        """A rep known to WeCom (the simulator) and to us."""
        userid = userid or f"alrep{next(_seq)}"
        self.sim.control.add_user(userid, name=name or f"Rep {userid}", department=[1])
        row = Staff(corp_id=self.corp.id, userid=userid, name=name or f"Rep {userid}")
        _db.session.add(row)
        _db.session.commit()
        return row

    def card(self, rep: Staff, contents: int = 1) -> tuple[Card, list[ContentItem]]:
        card = Card(corp_id=self.corp.id, staff_id=rep.id, display_name=rep.name)
        _db.session.add(card)
        _db.session.flush()
        items = [
            ContentItem(corp_id=self.corp.id, card_id=card.id, kind=ContentKind.article, title=f"Price sheet {i + 1}")
            for i in range(contents)
        ]
        _db.session.add_all(items)
        _db.session.commit()
        return card, items

    def visitor(self, name: str | None = None) -> MpSession:
        """A logged-in mini-program visitor (a customer with a user session)."""
        customer = Customer(corp_id=self.corp.id, name=name or f"Visitor {next(_seq)}")
        _db.session.add(customer)
        _db.session.flush()
        session = MpSession(
            corp_id=self.corp.id,
            token_hash=secrets.token_hex(32),
            kind=SessionKind.user,
            customer_id=customer.id,
            expires_at=utcnow() + timedelta(days=1),
        )
        _db.session.add(session)
        _db.session.commit()
        return session

    def events(self, session: MpSession, card: Card, *specs: tuple) -> dict:
        """Send card events: each spec is (type, seconds ago[, content_id[, share_id]])."""
        now_ms = int(time.time() * 1000)
        batch = []
        for spec in specs:
            type_, ago = spec[0], spec[1]
            event = {"id": f"e{next(_seq)}", "type": type_, "ts": now_ms - int(ago * 1000), "card_id": card.id}
            if len(spec) > 2 and spec[2] is not None:
                event["content_id"] = spec[2]
            if len(spec) > 3 and spec[3] is not None:
                event["share_id"] = spec[3]
            batch.append(event)
        return signals.ingest(self.corp.id, session.id, batch).shares

    def settle(self, timeout: float = 20.0) -> None:
        """Run jobs (and the outbox's recovery, which wakes waits that are over) until every
        delivery is final."""
        deadline = time.monotonic() + timeout
        while True:
            self.run_jobs()
            _db.session.expire_all()
            open_rows = _db.session.scalar(
                select(AlertDelivery.id).where(AlertDelivery.state.notin_(FINAL_DELIVERY_STATES)).limit(1)
            )
            if open_rows is None:
                return
            assert time.monotonic() < deadline, "alert deliveries did not settle"
            time.sleep(0.1)
            outbox.recover()

    def alerts(self, **filters) -> list[Alert]:
        _db.session.expire_all()
        return list(_db.session.scalars(select(Alert).filter_by(**filters).order_by(Alert.id)))

    def messages(self, userid: str | None = None) -> list[dict]:
        log = self.sim.control.state("messages")["messages"]["log"]
        return [m for m in log if userid is None or m["userid"] == userid]

    def deliveries(self, **filters) -> list[AlertDelivery]:
        _db.session.expire_all()
        return list(_db.session.scalars(select(AlertDelivery).filter_by(**filters).order_by(AlertDelivery.id)))


@pytest.fixture
def world(sim, corp, run_jobs):
    return World(sim, corp, run_jobs)


__all__ = ["DeliveryState", "World"]
