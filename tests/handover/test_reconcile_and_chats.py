"""The periodic reconciliation (get_unassigned_list) and group chats (≤300 a day per owner)."""

from datetime import timedelta

from sqlalchemy import select, update

from app.models import ChatState, GroupChat, Handover, HandoverGroupChat, HandoverKind, HandoverTrigger, utcnow
from app.services import corps, handover
from app.services.handover.groupchats import next_day
from jobs.queues import enqueue

from .conftest import DAY

URL = "/api/v1/handovers"


def test_reconciliation_picks_up_a_missed_departure(world, app):
    """When delete_user never reached us, does the periodic job find the rep's customers through
    get_unassigned_list (paginated), mirror the unknown ones and hand them over, once?"""
    known = world.give("wangfang", 2)
    world.control.config(callback_url=None)  # our callback URL is down from here on
    way = world.control.state("contact_ways")["contact_ways"][-1]["config_id"]
    unknown = world.control.scan(config_id=way)["external_userid"]
    world.control.resign_user("wangfang")
    app.config["HANDOVER_UNASSIGNED_PAGE_SIZE"] = 2

    job = enqueue(handover.reconcile_job, queue="low")
    world.run_jobs()
    report = job.return_value()
    assert report["reps_found_resigned"] == ["wangfang"] and report["pages"] == 2
    assert world.staff("wangfang").status == "resigned"
    found = world.handover(trigger=HandoverTrigger.reconcile)
    states = world.states(found.id)
    assert set(known + [unknown]) <= set(states) and set(states.values()) == {"waiting"}
    assert {i.taker.userid for i in world.items(found.id).values()} == {"liuyang"}

    again = enqueue(handover.reconcile_job, queue="low")
    world.run_jobs()
    assert again.return_value()["handovers"] == []
    assert world.db.session.query(Handover).count() == 1


def _chats(world, owner, n):
    customers = world.control.state("follows")["follows"]
    members = [f["external_userid"] for f in customers if f["userid"] == owner][:2]
    return [world.control.create_group_chat(owner=owner, members=members, name=f"群{i}")["chat_id"] for i in range(n)]


def test_group_chats_are_spread_over_days(world, client, admin_headers):
    """With a daily limit of 2, do 2 of 4 chats (one found only in WeCom) move today and the
    others the next day, to the rep who takes the customers?"""
    client.put(
        f"{URL}/policy", json={"groupchat_daily_limit": 2, "successors": {"zhangwei": "lina"}}, headers=admin_headers
    )
    world.control.config(groupchat_transfer_daily_limit=2)
    mirrored = _chats(world, "zhangwei", 3)
    world.settle()
    world.control.config(callback_url=None)
    [unmirrored] = _chats(world, "zhangwei", 1)
    world.control.config(callback_url=world.callback_url)
    world.control.resign_user("zhangwei")
    world.settle()

    found = world.handover(kind=HandoverKind.resigned)
    chats = {
        c.chat_id: c
        for c in world.db.session.scalars(select(HandoverGroupChat).where(HandoverGroupChat.handover_id == found.id))
    }
    assert set(chats) == set(mirrored) | {unmirrored}
    done = [c for c in chats.values() if c.state == ChatState.done]
    later = [c for c in chats.values() if c.state == ChatState.planned]
    assert len(done) == 2 and len(later) == 2
    assert {c.not_before for c in later} == {next_day(utcnow())}
    # The customers are still in flight: the next step is their poll, not tomorrow's chats.
    assert world.handover(id=found.id).next_step_at < next_day(utcnow())
    owners = {c["chat_id"]: c["owner"] for c in world.control.state("group_chats")["group_chats"]}
    assert {owners[c.chat_id] for c in done} == {"lina"}
    moved = next(c.chat_id for c in done if c.chat_id in mirrored)
    assert world.db.session.scalar(select(GroupChat).where(GroupChat.chat_id == moved)).owner_userid == "lina"

    # The next day, on both clocks: today's moves become yesterday's, the planned ones fall due.
    yesterday = utcnow() - timedelta(days=1)
    world.db.session.execute(
        update(HandoverGroupChat).where(HandoverGroupChat.state == ChatState.done).values(requested_at=yesterday)
    )
    world.db.session.execute(
        update(HandoverGroupChat)
        .where(HandoverGroupChat.state == ChatState.planned)
        .values(not_before=utcnow() - timedelta(seconds=1))
    )
    world.db.session.commit()
    world.control.advance(DAY)
    world.run(found.id)
    states = {c.state for c in world.db.session.scalars(select(HandoverGroupChat))}
    assert states == {ChatState.done}
    body = client.get(f"{URL}/{found.id}/group_chats", headers=admin_headers).json
    assert body["total"] == 4 and {c["new_owner_userid"] for c in body["items"]} == {"lina"}


def test_wecom_daily_limit_moves_chats_to_the_next_day(world, client, admin_headers):
    """When WeCom answers 45009 for a chat (its count is ahead of ours), is the chat moved to the
    next day rather than failed?"""
    world.control.config(groupchat_transfer_daily_limit=1)
    _chats(world, "lina", 2)
    world.settle()
    resp = client.post(
        URL,
        headers=admin_headers,
        json={
            "kind": "on_the_job",
            "handover_userid": "lina",
            "include_group_chats": True,
            "strategy": "successor",
            "successor_userid": "zhaolei",
        },
    )
    assert resp.status_code == 201, resp.json
    world.run_jobs()
    chats = world.db.session.scalars(select(HandoverGroupChat).order_by(HandoverGroupChat.id)).all()
    assert [c.state for c in chats] == [ChatState.done, ChatState.planned]
    assert chats[1].errcode == 45009 and chats[1].not_before == next_day(utcnow())


def test_departure_hooks_and_the_new_rep_of_each_customer(world):
    """Are the departure hooks called with (corp, rep) and does current_rep_for name each
    customer's new rep, for the features that route a departed rep's traffic?"""
    calls = []
    handover.on_rep_departed.append(lambda corp_id, staff_id: calls.append((corp_id, staff_id)))
    try:
        [customer] = world.give("liuyang", 1)
        world.control.resign_user("liuyang")
        world.settle()
    finally:
        handover.on_rep_departed.pop()
    corp_id, liuyang = corps.env_corp_id(), world.staff("liuyang")
    assert calls == [(corp_id, liuyang.id)]
    taker = handover.current_rep_for(corp_id, liuyang.id, world.customer_id(customer))
    assert taker == world.staff("wangfang").id
    assert handover.current_rep_for(corp_id, world.staff("lina").id, world.customer_id(customer)) is None
