"""360 fixtures: the simulator's demo corp synced into the app, principals for an admin and
two reps, and a customer brought in by a contact code the way production does it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Customer, Identity, Role, Staff
from app.services import corps, sync
from app.services.auth import Principal
from tests.cards.conftest import Visitor


class World:
    """The demo corp (reps zhangwei, lina, wangfang, …) mirrored in the app, with helpers that
    go through the real paths: contact codes over the API, callbacks from the simulator, the
    mini-program API, RQ workers."""

    def __init__(self, sim, db, client, api_auth, admin_headers, run_jobs, corp):
        self.sim, self.db, self.client, self.api_auth = sim, db, client, api_auth
        self.admin_headers, self.run_jobs, self.corp = admin_headers, run_jobs, corp
        self._visitors = (f"10.36.0.{n}" for n in range(1, 250))

    def settle(self) -> None:
        """Deliver every pending callback, then drain the queues with a real worker."""
        self.sim.control.flush_callbacks()
        self.run_jobs()
        self.db.session.expire_all()

    def staff(self, userid: str) -> Staff:
        return self.db.session.scalar(select(Staff).where(Staff.userid == userid))

    def principal(self, role: str = "admin", userid: str | None = None) -> Principal:
        """A signed-up user's principal (a rep is tied to the staff row of ``userid``)."""
        staff_id = self.staff(userid).id if userid else None
        user = self.api_auth.user(role, staff_id=staff_id)
        return Principal(user_id=user.id, corp_id=self.corp.id, role=Role(role), staff_id=staff_id)

    def code(self, userid: str, channel: str = "expo-2026", tags=({"name": "expo-2026"},)) -> dict:
        body = {"name": f"Code {channel}", "channel": channel, "members": [{"userid": userid}], "tags": list(tags)}
        resp = self.client.post("/api/v1/contact-codes", json=body, headers=self.admin_headers)
        assert resp.status_code == 201, resp.json
        return resp.json

    def scan(self, code: dict, name: str, unionid: str | None = None) -> tuple[int, str]:
        """A WeChat user scans the code: (customer id, external_userid) once mirrored."""
        scan = self.sim.control.scan(config_id=code["config_id"], unionid=unionid, customer={"name": name})
        self.settle()
        customer_id = self.db.session.scalar(
            select(Identity.customer_id).where(Identity.value == scan["external_userid"])
        )
        assert customer_id is not None
        return customer_id, scan["external_userid"]

    def customer(self, customer_id: int) -> Customer:
        self.db.session.expire_all()
        return self.db.session.get(Customer, customer_id)

    def visitor(self) -> Visitor:
        return Visitor(self.client, self.sim, next(self._visitors))


@pytest.fixture(autouse=True)
def _demo_corp(sim, corp):
    sim.control.seed_demo()
    sync.run(corps.env_corp_id())


@pytest.fixture
def world(sim, db, client, api_auth, admin_headers, run_jobs, corp):
    return World(sim, db, client, api_auth, admin_headers, run_jobs, corp)
