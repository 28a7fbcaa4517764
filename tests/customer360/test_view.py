"""The 360 view, built from real data: a contact-code scan, card visits through the
mini-program API and the signals drainer, alerts through the outbox, a hand-over, notes and tags."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.errors import ApiError
from app.models import ContentItem, ContentKind, Tag
from app.services import cards, customer360
from app.services.contact_codes import tags as code_tags
from tests.cards.conftest import ev

UNIONID = "oUnion360Wang0000000000000001"


def _card(world, admin, userid):
    card = cards.create(admin, {"staff_id": world.staff(userid).id, "display_name": f"{userid} card"})
    item = ContentItem(corp_id=world.corp.id, card_id=card.id, kind=ContentKind.article, title="Price sheet")
    world.db.session.add(item)
    world.db.session.commit()
    return card.id, item.id


@pytest.fixture
def story(world):
    """王五 scans zhangwei's expo code, is shared zhangwei's card by a friend, reads the price
    sheet and is still on the card; alerts go out; zhangwei writes a note, tags them, and an admin
    starts handing them over to lina."""
    admin = world.principal("admin")
    rep = world.principal("rep", "zhangwei")
    code = world.code("zhangwei")
    customer_id, external_userid = world.scan(code, "王五", unionid=UNIONID)
    card_id, item_id = _card(world, admin, "zhangwei")
    world.run_jobs()  # the card's contact way
    friend = world.visitor()
    friend.login()
    shared = friend.send(ev("card_view", card_id, at=-120), ev("share", card_id, at=-119, id="fs"))
    share_code = shared.json["shares"]["fs"]
    world.run_jobs()
    wang = world.visitor()
    wang.login(unionid=UNIONID)
    resp = wang.send(
        ev("card_view", card_id, at=-60, share_id=share_code),
        ev("content_view", card_id, item_id, at=-50),
        *[ev("heartbeat", card_id, item_id, at=-50 + 5 * i) for i in range(1, 11)],
    )
    assert resp.status_code == 202, resp.json
    world.run_jobs()
    vip = code_tags.ensure(world.corp.id, [{"group_name": "等级", "name": "VIP"}])
    world.db.session.commit()
    vip_tag = world.db.session.scalar(select(Tag).where(Tag.wecom_tag_id == vip[0]))
    note = customer360.add_note(rep, customer_id, "  Wants the 2027 price list by Friday.  ")
    customer360.set_tags(rep, customer_id, [vip_tag.id], [])
    handover = world.client.post(
        "/api/v1/handovers",
        json={
            "kind": "on_the_job",
            "handover_userid": "zhangwei",
            "strategy": "explicit",
            "plan": [{"customer_id": customer_id, "takeover_userid": "lina"}],
            "transfer_message": "李娜 will look after you from now on",
        },
        headers=world.admin_headers,
    )
    assert handover.status_code == 201, handover.json
    world.settle()
    return {
        "admin": admin,
        "rep": rep,
        "customer_id": customer_id,
        "external_userid": external_userid,
        "card_id": card_id,
        "item_id": item_id,
        "share_code": share_code,
        "note_id": note.id,
        "vip": vip_tag,
        "handover_id": handover.json["id"],
        "code": code,
    }


def test_every_section_comes_from_real_data(world, story):
    """Does the admin's 360 view show identities, source, follows with tags, notes, visits with
    dwell and share chain, intent, live presence, alerts and the hand-over?"""
    wang = world.visitor()
    wang.login(unionid=UNIONID)
    wang.send(ev("heartbeat", story["card_id"], story["item_id"]))
    world.run_jobs()
    view = customer360.view(story["admin"], story["customer_id"])
    customer = view["customer"]
    assert customer["name"] == "王五" and customer["type"] == "external_contact"
    assert customer["first_channel"] == customer["last_channel"] == "expo-2026"
    kinds = {i["type"]: i for i in view["identities"]}
    assert kinds["external_userid"]["value"] == story["external_userid"]
    assert kinds["unionid"]["value"] == UNIONID and "mp_openid" in kinds
    assert view["source"]["first"]["id"] == story["code"]["id"]
    assert view["source"]["first"]["state"] == story["code"]["state"] and view["source"]["last"]["name"]
    zhangwei = next(f for f in view["follows"] if f["staff_userid"] == "zhangwei")
    assert {t["name"] for t in zhangwei["tags"]} == {"expo-2026", "VIP"}
    assert {t["group"] for t in zhangwei["tags"] if t["name"] == "VIP"} == {"等级"}
    [note] = view["notes"]
    assert note["body"] == "Wants the 2027 price list by Friday." and note["author_name"] == "张伟"
    assert note["can_edit"]
    read = max((v for v in view["visits"] if v["content_id"] == story["item_id"]), key=lambda v: v["dwell_seconds"])
    assert read["content_title"] == "Price sheet" and read["dwell_seconds"] >= 45
    opened = next(v for v in view["visits"] if v["via_share_code"])
    assert opened["via_share_code"] == story["share_code"] and opened["share_depth"] == 1
    assert opened["share_chain"][0]["code"] == story["share_code"] and opened["share_chain"][0]["customer_id"]
    assert opened["card_name"] == "zhangwei card"
    [intent] = view["intent"]["per_rep"]
    assert intent["staff_userid"] == "zhangwei" and intent["score"] > 0
    assert view["intent"]["level"] == str(intent["level"]) and view["intent"]["score"] == intent["score"]
    [here] = view["presence"]
    assert here["card_id"] == story["card_id"] and here["content_id"] == story["item_id"]
    assert here["since"] is not None and here["card_name"] == "zhangwei card"
    assert view["alerts"] and all(a["deliveries"] for a in view["alerts"])
    assert {a["kind"] for a in view["alerts"]} >= {"content_read", "share_viewed"}
    [item] = view["handovers"]
    assert item["handover_id"] == story["handover_id"] and item["from_userid"] == "zhangwei"
    assert item["taker_userid"] == "lina" and item["state"] in {"requested", "waiting", "done"} and item["history"]


def test_a_rep_sees_their_own_part(world, story):
    """Does a rep following the customer see only their relation, intent, alerts and hand-overs?"""
    view = customer360.view(story["rep"], story["customer_id"])
    assert [f["staff_userid"] for f in view["follows"]] == ["zhangwei"]
    assert all(d["userid"] == "zhangwei" for a in view["alerts"] for d in a["deliveries"])
    assert [i["staff_userid"] for i in view["intent"]["per_rep"]] == ["zhangwei"]
    assert view["handovers"] and view["notes"] and view["visits"]


def test_a_rep_cannot_read_another_reps_customer(world, story):
    """Can a rep read another rep's customer, or find it by its external_userid?"""
    other = world.principal("rep", "wangfang")
    with pytest.raises(ApiError) as err:
        customer360.view(other, story["customer_id"])
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        customer360.resolve_external(other, story["external_userid"])
    assert err.value.status == 404
    assert customer360.resolve_external(story["rep"], story["external_userid"]) == story["customer_id"]
    with pytest.raises(ApiError) as err:
        customer360.resolve_external(story["admin"], "wm-nobody")
    assert err.value.status == 404
