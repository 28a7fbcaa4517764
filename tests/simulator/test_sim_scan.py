"""Customers adding reps through contact ways, and the callbacks WeCom sends about contacts."""

from __future__ import annotations

import pytest
from wechatpy.work import parse_message

from wecom.simulator import SimulatorError


def test_scan_sends_add_external_contact_with_state_and_welcome_code(api, ctl, receiver, demo):
    """Does a scan send add_external_contact carrying the way's State and a WelcomeCode?"""
    way = api.add_way(["zhangwei"], state="expo2026")
    result = ctl.scan(config_id=way["config_id"])
    event = receiver.wait_for(1)[0]
    assert event["ChangeType"] == "add_external_contact"
    assert event["UserID"] == "zhangwei" == result["userid"]
    assert event["ExternalUserID"] == result["external_userid"]
    assert event["State"] == "expo2026"
    assert event["WelcomeCode"] == result["welcome_code"]


def test_wechatpy_parses_the_event(api, ctl, receiver, demo):
    """Does wechatpy 2.0 parse the simulator's plaintext as a change_external_contact event?"""
    way = api.add_way(["zhangwei"], state="wx")
    ctl.scan(config_id=way["config_id"])
    message = parse_message(receiver.wait_for(1)[0]["_plaintext"])
    assert message.change_type == "add_external_contact"
    assert message.state == "wx" and message.welcome_code and message.user_id == "zhangwei"


def test_scan_by_state(api, ctl, demo):
    """Can a scan find its way by state?"""
    api.add_way(["lina"], state="by-state")
    assert ctl.scan(state="by-state")["userid"] == "lina"


def test_scan_creates_the_relation(api, ctl, demo):
    """After a scan, does externalcontact/get show the customer with unionid, add_way 1 and the state?"""
    way = api.add_way(["zhangwei"], state="expo")
    result = ctl.scan(config_id=way["config_id"], customer={"name": "小明", "unionid": "oUnionXiaoMing"})
    got = api.get("externalcontact/get", external_userid=result["external_userid"])
    assert got["external_contact"]["unionid"] == "oUnionXiaoMing"
    assert got["external_contact"]["name"] == "小明"
    follow = got["follow_user"][0]
    assert (follow["userid"], follow["add_way"], follow["state"]) == ("zhangwei", 1, "expo")


def test_existing_customer_keeps_external_userid(api, ctl, demo):
    """Does a known WeChat user scanning a second way keep one external_userid?"""
    first = ctl.scan(config_id=api.add_way(["zhangwei"])["config_id"], unionid="oUnionSame")
    second = ctl.scan(config_id=api.add_way(["lina"])["config_id"], unionid="oUnionSame")
    assert first["external_userid"] == second["external_userid"]
    got = api.get("externalcontact/get", external_userid=first["external_userid"])
    assert {f["userid"] for f in got["follow_user"]} == {"zhangwei", "lina"}


def test_multi_way_round_robin(api, ctl, demo):
    """Does a multi-user way spread scans round-robin over its reps?"""
    way = api.add_way(["zhangwei", "lina"])
    picks = [ctl.scan(config_id=way["config_id"])["userid"] for _ in range(4)]
    assert sorted(picks) == ["lina", "lina", "zhangwei", "zhangwei"]
    assert picks[0] != picks[1]


def test_random_pick_stays_within_the_way(api, ctl, demo):
    """Does random picking only choose reps of the way?"""
    way = api.add_way(["wangfang", "liuyang"])
    picks = {ctl.scan(config_id=way["config_id"], pick="random")["userid"] for _ in range(10)}
    assert picks <= {"wangfang", "liuyang"}


def test_scan_skips_resigned_reps(api, ctl, demo):
    """Does a scan never land on a rep who resigned?"""
    way = api.add_way(["zhangwei", "lina"])
    ctl.resign_user("zhangwei")
    assert {ctl.scan(config_id=way["config_id"])["userid"] for _ in range(3)} == {"lina"}


def test_skip_verify_false_sends_add_half(api, ctl, receiver, demo):
    """Does a way with skip_verify false send add_half_external_contact?"""
    way = api.add_way(["zhangwei"], state="half", skip_verify=False)
    ctl.scan(config_id=way["config_id"])
    event = receiver.wait_for(1)[0]
    assert event["ChangeType"] == "add_half_external_contact"
    assert event["State"] == "half" and event["WelcomeCode"]


def test_already_chatted_has_no_welcome_code(api, ctl, receiver, demo):
    """When the two already chatted, is the WelcomeCode left out of the callback?"""
    way = api.add_way(["zhangwei"])
    result = ctl.scan(config_id=way["config_id"], already_chatted=True)
    assert result["welcome_code"] is None
    assert "WelcomeCode" not in receiver.wait_for(1)[0]


def test_customer_deletes_rep(api, ctl, receiver, demo):
    """Does the customer deleting the rep send del_follow_user and end the relation?"""
    customer = demo["customers"][0]
    ctl.customer_deletes_rep(customer, "zhangwei")
    event = receiver.wait_for(1)[0]
    assert (event["ChangeType"], event["UserID"], event["ExternalUserID"]) == (
        "del_follow_user",
        "zhangwei",
        customer,
    )
    assert api.get("externalcontact/get", external_userid=customer)["errcode"] == 84061


def test_rep_deletes_customer(ctl, receiver, demo):
    """Does the rep deleting the customer send del_external_contact (no Source)?"""
    ctl.rep_deletes_customer("lina", demo["customers"][1])
    event = receiver.wait_for(1)[0]
    assert event["ChangeType"] == "del_external_contact" and "Source" not in event


def test_client_edit_sends_edit_but_api_tagging_does_not(api, ctl, receiver, demo):
    """Does an edit in the client send edit_external_contact while mark_tag through the API sends nothing?"""
    customer = demo["customers"][0]
    ctl.edit_customer("zhangwei", customer, remark="VIP", wait=True)
    assert receiver.wait_for(1)[0]["ChangeType"] == "edit_external_contact"
    tag_id = api.post("externalcontact/get_corp_tag_list", {})["tag_group"][0]["tag"][1]["id"]
    body = {"userid": "zhangwei", "external_userid": customer, "add_tag": [tag_id]}
    assert api.post("externalcontact/mark_tag", body)["errcode"] == 0
    ctl.flush_callbacks()
    assert len(ctl.callbacks()) == 1
    follow = api.get("externalcontact/get", external_userid=customer)["follow_user"][0]
    assert follow["remark"] == "VIP" and tag_id in [t["tag_id"] for t in follow["tags"]]


def test_group_chat_lifecycle_callbacks(ctl, receiver, demo):
    """Do group create, member changes and dismiss send change_external_chat with their details?"""
    chat = ctl.create_group_chat("zhangwei", [demo["customers"][0]], name="VIP群")
    chat_id = chat["chat_id"]
    ctl.update_group_chat(chat_id, "add_member", members=[demo["customers"][1]], join_scene=3)
    ctl.update_group_chat(chat_id, "del_member", members=[demo["customers"][0]], quit_scene=0)
    ctl.dismiss_group_chat(chat_id)
    events = receiver.wait_for(4)
    assert [e["ChangeType"] for e in events] == ["create", "update", "update", "dismiss"]
    assert all(e["Event"] == "change_external_chat" and e["ChatId"] == chat_id for e in events)
    added, removed = events[1], events[2]
    assert (added["UpdateDetail"], added["JoinScene"], added["MemChangeCnt"]) == ("add_member", "3", "1")
    assert added["MemChangeList"]["Item"] == demo["customers"][1]
    assert (removed["UpdateDetail"], removed["QuitScene"]) == ("del_member", "0")


def test_scan_unknown_way_is_404(ctl, demo):
    """Does scanning a way that does not exist fail with HTTP 404?"""
    with pytest.raises(SimulatorError) as error:
        ctl.scan(config_id="nope")
    assert error.value.status == 404
