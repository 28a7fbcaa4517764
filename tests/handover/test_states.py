"""Every customer state, driven by the simulator's rules: 24 h acceptance, refusals, taker
limits at request and at completion, two transfers in 90 days, lost relations, WeCom errors."""

from collections import Counter

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.models import Alert, AlertKind, AuditLog, FollowStatus, HandoverKind, HandoverStatus, ItemState
from app.services import corps, sync
from wecom.client import contact_client

from .conftest import DAY

URL = "/api/v1/handovers"


def _actions(world) -> Counter:
    return Counter(a.action for a in world.db.session.scalars(select(AuditLog)))


def _only(states: dict, *customers) -> dict:
    return {c: states[c] for c in customers}


def _takers(world, handover_id) -> dict[str, str]:
    return {ext: item.taker.userid for ext, item in world.items(handover_id).items() if item.taker}


def test_on_the_job_message_and_two_transfers_in_90_days(world, client, admin_headers):
    """On the job: is a customer transferred twice in 90 days not_allowed (40128) while the other
    moves, the old rep's relation closing through WeCom's DELETE_BY_TRANSFER callback?"""
    twice, once = world.give("zhangwei", 2)
    api = contact_client().transfer
    api.transfer_customer("zhangwei", "lina", [twice])
    world.control.advance(DAY + 60, wait=True)
    api.transfer_customer("lina", "zhangwei", [twice])
    world.control.advance(DAY + 60, wait=True)
    world.settle()
    sync.run(corps.env_corp_id())  # WeCom sends no callback to the rep who got the customer back

    resp = client.post(
        URL,
        headers=admin_headers,
        json={
            "kind": "on_the_job",
            "handover_userid": "zhangwei",
            "customer_ids": [world.customer_id(twice), world.customer_id(once)],
            "strategy": "successor",
            "successor_userid": "zhaolei",
            "transfer_message": "您好，我是新的顾问赵磊",
        },
    )
    assert resp.status_code == 201, resp.json
    handover_id = resp.json["id"]
    world.run_jobs()
    states = world.states(handover_id)
    assert states == {twice: "not_allowed", once: "waiting"}
    assert world.items(handover_id)[twice].errcode == 40128

    world.control.advance(DAY + 60, wait=True)
    world.run(handover_id)
    world.settle()  # del_external_contact (DELETE_BY_TRANSFER) for zhangwei
    assert world.states(handover_id) == {twice: "not_allowed", once: "done"}
    assert world.relation("zhangwei", once).status == FollowStatus.transferred
    assert world.relation("zhaolei", once).status == FollowStatus.active
    assert world.relation("zhangwei", twice).status == FollowStatus.active  # nothing lost
    body = client.get(f"{URL}/{handover_id}", headers=admin_headers).json
    assert body["status"] == "finished" and body["needs_attention"] is True
    assert body["kind"] == "on_the_job" and body["transfer_message"] == "您好，我是新的顾问赵磊"
    actions = _actions(world)
    assert actions["handover.customer.not_allowed"] == 1 and actions["handover.needs_attention"] >= 1


def test_taker_at_limit_is_replanned_to_the_next_rep(world, client, admin_headers):
    """When the successor is at their limit (40099), and the next rep reaches theirs before the
    customer accepts (customer_limit_exceed), does each customer move on to a rep with room?"""
    client.put(f"{URL}/policy", json={"successors": {"zhangwei": "lina"}}, headers=admin_headers)
    customers = world.give("zhangwei", 3)
    world.control.set_contact_limit("lina", 1)  # she already has her demo customer
    world.control.resign_user("zhangwei")
    world.settle()
    handover = world.handover(kind=HandoverKind.resigned)
    assert set(world.states(handover.id).values()) == {"waiting"}
    assert set(_takers(world, handover.id).values()) == {"zhaolei"}  # the other rep of the department

    zhaolei = next(u for u in world.control.state("users")["users"] if u["userid"] == "zhaolei")
    world.control.set_contact_limit("zhaolei", zhaolei["customers"])
    world.control.advance(DAY + 60, wait=True)  # status 4 + transfer_fail customer_limit_exceed
    world.settle()  # the callbacks re-plan; the step sends again
    takers = _takers(world, handover.id)
    assert set(world.states(handover.id).values()) == {"waiting"}
    assert set(takers.values()) <= {"wangfang", "liuyang"}  # the department is full: its parent's reps

    world.control.advance(DAY + 60, wait=True)
    world.run(handover.id)
    assert set(world.states(handover.id).values()) == {"done"}
    history = [h["state"] for h in world.items(handover.id)[customers[0]].history]
    assert history == [
        "planned",
        "requested",
        "taker_at_limit",
        "planned",
        "requested",
        "waiting",
        "taker_at_limit",
        "planned",
        "requested",
        "waiting",
        "done",
    ]
    assert world.handover(id=handover.id).status == HandoverStatus.finished


def test_refused_and_lost_customers(world, client, admin_headers):
    """With approval required, is a customer who refuses recorded as refused, one who left the
    rep meanwhile as failed (40131), and the rest done?"""
    client.put(f"{URL}/policy", json={"approval_required": True}, headers=admin_headers)
    refuser, gone, stays = world.give("zhangwei", 3)
    world.control.resign_user("zhangwei")
    world.settle()
    handover = world.handover(kind=HandoverKind.resigned)
    assert handover.status == HandoverStatus.pending_approval
    assert set(world.states(handover.id).values()) == {"planned"}
    world.control.customer_deletes_rep(gone, "zhangwei")
    world.settle()

    assert client.post(f"{URL}/{handover.id}/approve", headers=admin_headers).status_code == 200
    world.run_jobs()
    assert _only(world.states(handover.id), refuser, gone, stays) == {
        refuser: "waiting",
        gone: "failed",
        stays: "waiting",
    }
    assert world.items(handover.id)[gone].errcode == 40131

    world.control.refuse_transfer(refuser)
    world.settle()  # transfer_fail customer_refused
    assert world.states(handover.id)[refuser] == "refused"
    world.control.advance(DAY + 60, wait=True)
    world.run(handover.id)
    assert _only(world.states(handover.id), refuser, gone, stays) == {refuser: "refused", gone: "failed", stays: "done"}
    body = client.get(f"{URL}/{handover.id}", headers=admin_headers).json
    # the rep's demo customer (王先生) was handed over too
    assert body["counts"] == {"done": 2, "refused": 1, "failed": 1} and body["needs_attention"] is True
    refused = client.get(f"{URL}/{handover.id}/customers?state=refused", headers=admin_headers).json["items"]
    assert [i["external_userid"] for i in refused] == [refuser] and refused[0]["reason"] == "customer_refused"
    assert world.relation("zhangwei", refuser).status == FollowStatus.active  # still theirs, not lost
    # The admins heard of the refusal (callback and poll share one key) and of the failed one.
    alerts = world.db.session.scalars(select(Alert).where(Alert.kind == AlertKind.transfer_failed)).all()
    assert sorted(a.data["notice"].split(":")[1] for a in alerts) == sorted([refuser, gone])


def test_wecom_errors_never_send_a_customer_twice(world, app):
    """After a 45009 (nothing sent) and an HTTP 500 (unknown), do the customers end up requested
    exactly once each, with a retry scheduled rather than a tight loop?"""
    customers = world.give("zhangwei", 3)
    world.control.set_faults(rate=1.0, errors=[45009], paths=["externalcontact/resigned/transfer_customer"], times=1)
    world.control.resign_user("zhangwei")
    world.settle()
    handover = world.handover(kind=HandoverKind.resigned)
    assert set(world.states(handover.id).values()) == {"planned"}
    assert ScheduledJobRegistry(queue=app.extensions["queues"]["low"]).count >= 1
    # The first batch was refused as a whole and put back; nothing more is sent until the retry.
    histories = {tuple(h["state"] for h in i.history) for i in world.items(handover.id).values()}
    assert ("planned", "requested", "planned") in histories and histories <= {
        ("planned",),
        ("planned", "requested", "planned"),
    }

    world.control.set_faults(rate=1.0, errors=[500], paths=["externalcontact/resigned/transfer_customer"], times=1)
    world.run(handover.id)
    # The batch's outcome is unknown: it stays requested (not resent blindly), the rest waits.
    assert "requested" in set(world.states(handover.id).values()) <= {"requested", "planned"}
    world.run(handover.id)  # transfer_result shows no record → sent again
    assert set(world.states(handover.id).values()) == {"waiting"}
    sent = Counter(t["external_userid"] for t in world.transfers())
    assert all(sent[c] == 1 for c in customers)


def test_no_rep_with_room_is_a_final_taker_at_limit(world, client, admin_headers):
    """When no rep has room under the corp's cap, is the customer final as taker_at_limit and flagged?"""
    client.put(f"{URL}/policy", json={"customer_cap": 1, "scope": "department"}, headers=admin_headers)
    world.give("zhangwei", 2)
    world.control.resign_user("zhangwei")
    world.settle()
    handover = world.handover(kind=HandoverKind.resigned)
    counts = Counter(world.states(handover.id).values())
    # lina is at her cap (her demo customer); zhaolei takes one; the other two have nobody.
    assert counts == {"waiting": 1, "taker_at_limit": 2}
    assert _actions(world)["handover.needs_attention"] == 1
    assert str(ItemState.taker_at_limit) in client.get(f"{URL}/{handover.id}", headers=admin_headers).json["counts"]


def test_cancel_mid_run_stops_sending_and_follows_what_wecom_has(world, app, client, admin_headers):
    """When an admin cancels a running hand-over, are the customers not yet sent cancelled while
    those WeCom already has are still followed to done?"""
    from jobs.worker import build_worker

    client.put(f"{URL}/policy", json={"successors": {"zhangwei": "lina"}}, headers=admin_headers)
    world.give("zhangwei", 2)
    world.control.resign_user("zhangwei")
    world.settle()
    handover = world.handover(kind=HandoverKind.resigned)
    lina = next(u for u in world.control.state("users")["users"] if u["userid"] == "lina")
    world.control.set_contact_limit("lina", lina["customers"] + 1)  # room for one more
    world.control.advance(DAY + 60, wait=True)  # one completes, the others fail: customer_limit_exceed
    build_worker(app, ["default"]).work(burst=True)  # the callbacks re-plan them; their step waits
    world.db.session.expire_all()
    assert Counter(world.states(handover.id).values()) == {"waiting": 1, "planned": 2}

    resp = client.post(f"{URL}/{handover.id}/cancel", json={"reason": "reorganisation"}, headers=admin_headers)
    assert resp.status_code == 200 and resp.json["status"] == "cancelled"
    world.run_jobs()
    world.run(handover.id)
    body = client.get(f"{URL}/{handover.id}", headers=admin_headers).json
    assert body["status"] == "cancelled" and body["counts"] == {"done": 1, "cancelled": 2}
    assert world.handover(id=handover.id).next_step_at is None
    assert all(t["takeover_userid"] == "lina" for t in world.transfers())  # nothing sent after the cancel
