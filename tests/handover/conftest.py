"""Hand-over fixtures: the simulator's demo corp mirrored into the app, helpers to give reps
customers, to run the callback pipeline and to step a hand-over the way an admin would."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Customer, FollowRelation, Handover, HandoverItem, Identity, Staff
from app.services import corps, sync
from wecom.client import contact_client

DAY = 86400


class World:
    """The demo corp (dept 3 华东销售: zhangwei, lina, plus zhaolei; dept 4: wangfang, liuyang;
    dept 5: chenjing) in the simulator, mirrored in the app."""

    def __init__(self, sim, db, run_jobs, runner, callback_url):
        self.sim, self.db, self.run_jobs, self.runner = sim, db, run_jobs, runner
        self.control = sim.control
        self.callback_url = callback_url

    def settle(self):
        """Deliver pending callbacks and process every queued job."""
        self.control.flush_callbacks()
        self.run_jobs()
        self.db.session.expire_all()

    def give(self, userid: str, n: int, remark: str | None = None) -> list[str]:
        """``n`` new customers of ``userid`` (scans of a contact way), mirrored by the callbacks."""
        way = contact_client().external_contact.add_contact_way(type=1, scene=2, state=f"way-{userid}", user=[userid])[
            "config_id"
        ]
        ids = [self.control.scan(config_id=way)["external_userid"] for _ in range(n)]
        if remark:
            for external_userid in ids:
                self.control.edit_customer(userid, external_userid, remark=remark)
        self.settle()
        return ids

    def staff(self, userid: str) -> Staff:
        return self.db.session.scalar(select(Staff).where(Staff.userid == userid))

    def customer_id(self, external_userid: str) -> int:
        return self.db.session.scalar(select(Identity.customer_id).where(Identity.value == external_userid))

    def relation(self, userid: str, external_userid: str) -> FollowRelation | None:
        return self.db.session.scalar(
            select(FollowRelation)
            .join(Staff, Staff.id == FollowRelation.staff_id)
            .join(Customer, Customer.id == FollowRelation.customer_id)
            .join(Identity, Identity.customer_id == Customer.id)
            .where(Staff.userid == userid, Identity.value == external_userid)
        )

    def handover(self, **where) -> Handover:
        self.db.session.expire_all()
        return self.db.session.scalars(select(Handover).filter_by(**where).order_by(Handover.id.desc())).first()

    def items(self, handover_id: int) -> dict[str, HandoverItem]:
        """external_userid → item."""
        self.db.session.expire_all()
        rows = self.db.session.scalars(select(HandoverItem).where(HandoverItem.handover_id == handover_id))
        return {i.external_userid: i for i in rows}

    def states(self, handover_id: int) -> dict[str, str]:
        return {k: str(v.state) for k, v in self.items(handover_id).items()}

    def run(self, handover_id: int) -> str:
        """`flask handover run ID`: one step now, polling WeCom."""
        result = self.runner.invoke(args=["handover", "run", str(handover_id)])
        assert result.exit_code == 0, result.output
        self.db.session.expire_all()
        return result.output

    def transfers(self) -> list[dict]:
        return self.control.state("transfers")["transfers"]


@pytest.fixture
def world(sim, db, run_jobs, runner, live_server):
    """The demo corp plus a third rep in 华东销售, synced into the app."""
    sim.control.seed_demo()
    sim.control.add_user("zhaolei", name="赵磊", department=[3])
    sync.run(corps.env_corp_id())
    return World(sim, db, run_jobs, runner, f"{live_server}/wecom/callback")
