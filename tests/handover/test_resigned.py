"""A rep leaves (delete_user): their customers are handed over by policy, end to end through
the simulator, the callback pipeline, a real worker and transfer_result polling."""

from collections import Counter

from sqlalchemy import select

from app.models import AuditLog, DeletedBy, FollowStatus, HandoverStatus, HandoverTrigger, ItemState

from .conftest import DAY


def test_resigned_rep_customers_spread_over_the_department(world, client, admin_headers):
    """When a rep resigns, are their customers spread over their department's active reps,
    least-loaded first, and moved with remark, tags and channel once WeCom completes?"""
    customers = world.give("zhangwei", 6, remark="VIP")
    world.control.resign_user("zhangwei")
    world.settle()

    handover = world.handover(handover_staff_id=world.staff("zhangwei").id)
    assert handover.trigger == HandoverTrigger.callback and handover.status == HandoverStatus.running
    items = world.items(handover.id)
    assert set(items) >= set(customers)
    assert {str(i.state) for i in items.values()} == {"waiting"}
    takers = Counter(world.db.session.get(type(world.staff("lina")), i.taker_staff_id).userid for i in items.values())
    assert set(takers) == {"lina", "zhaolei"}  # the same department only
    # lina already had a demo customer: the least-loaded get more, loads end up within one.
    assert abs((takers["lina"] + 1) - takers["zhaolei"]) <= 1
    sim_transfers = [t for t in world.transfers() if t["handover_userid"] == "zhangwei"]
    assert len(sim_transfers) == len(items) and all(t["kind"] == "resigned" for t in sim_transfers)

    world.control.advance(DAY + 60, wait=True)
    output = world.run(handover.id)
    assert "hand-over #" in output
    assert set(world.states(handover.id).values()) == {"done"}
    handover = world.handover(id=handover.id)
    assert handover.status == HandoverStatus.finished and handover.finished_at is not None

    moved = customers[0]
    taker = world.items(handover.id)[moved].taker.userid
    old, new = world.relation("zhangwei", moved), world.relation(taker, moved)
    assert old.status == FollowStatus.transferred and old.deleted_by == DeletedBy.transfer
    assert new.status == FollowStatus.active and new.remark == "VIP" and new.state == "way-zhangwei"
    assert [t.wecom_tag_id for t in new.tags] == [t.wecom_tag_id for t in old.tags]

    audits = Counter(a.action for a in world.db.session.scalars(select(AuditLog)))
    assert audits["handover.customer.done"] == len(items) and audits["handover.finished"] == 1

    body = client.get(f"/api/v1/handovers/{handover.id}", headers=admin_headers).json
    assert body["counts"] == {"done": len(items)} and body["status"] == "finished"
    assert body["needs_attention"] is False
    page = client.get(f"/api/v1/handovers/{handover.id}/customers?per_page=100", headers=admin_headers).json
    assert page["total"] == len(items)
    first = page["items"][0]
    assert [h["state"] for h in first["history"]] == ["planned", "requested", "waiting", "done"]
    assert first["takeover_userid"] in {"lina", "zhaolei"}


def test_same_departure_twice_makes_one_handover(world):
    """When the delete_user event is processed again, is there still one hand-over?"""
    from app.services import handover as service

    world.give("lina", 2)
    world.control.resign_user("lina")
    world.settle()
    service.on_rep_resigned(world.staff("lina").corp_id, {"UserID": "lina"})
    world.db.session.commit()
    from app.models import Handover

    assert world.db.session.query(Handover).count() == 1
    assert {str(s) for s in world.states(world.handover().id).values()} == {str(ItemState.waiting)}


def test_a_sync_that_sees_the_transfer_first_is_merged_not_duplicated(world):
    """When the nightly sync mirrors WeCom's completed transfers before our poll, does the poll
    merge into the taker's relation and still record the old one as transferred?"""
    from app.services import corps, sync

    customers = world.give("lina", 2, remark="老客户")
    world.control.resign_user("lina")
    world.settle()
    handover = world.handover(handover_staff_id=world.staff("lina").id)
    world.control.advance(DAY + 60, wait=True)
    sync.run(corps.env_corp_id())
    assert world.relation("lina", customers[0]).deleted_by == DeletedBy.sync
    world.run(handover.id)
    assert set(world.states(handover.id).values()) == {"done"}
    for external_userid in customers:
        taker = world.items(handover.id)[external_userid].taker.userid
        old, new = world.relation("lina", external_userid), world.relation(taker, external_userid)
        assert old.status == FollowStatus.transferred and old.deleted_by == DeletedBy.transfer
        assert new.status == FollowStatus.active and new.remark == "老客户"


def test_cli_status_and_run(world, runner):
    """Do `flask handover status` and `run` report each hand-over's progress, and refuse an unknown id?"""
    world.give("lina", 1)
    world.control.resign_user("lina")
    world.settle()
    handover = world.handover()
    status = runner.invoke(args=["handover", "status"])
    assert status.exit_code == 0 and f"#{handover.id} resigned from lina [running] 0/2 final" in status.output
    assert "waiting 2" in status.output
    world.control.advance(DAY + 60, wait=True)
    run = runner.invoke(args=["handover", "run"])  # every open hand-over
    assert run.exit_code == 0 and f"hand-over #{handover.id}: finished, 2/2 final" in run.output
    assert runner.invoke(args=["handover", "run", "999"]).exit_code != 0
    assert "no open hand-overs" in runner.invoke(args=["handover", "run"]).output
