"""Customer group chats: list/get and transfers, including the 300-a-day cap."""

from __future__ import annotations

ONJOB = "externalcontact/groupchat/onjob_transfer"
RESIGNED = "externalcontact/groupchat/transfer"


def _chats(ctl, owner: str, n: int, members: list[str] = ()) -> list[str]:
    return [ctl.create_group_chat(owner, list(members), name=f"群{i}")["chat_id"] for i in range(n)]


def test_list_and_get(api, ctl, demo):
    """Do groupchat/list and groupchat/get show chats, owners and members?"""
    [chat_id] = _chats(ctl, "zhangwei", 1, [demo["customers"][0]])
    _chats(ctl, "lina", 2)
    listed = api.post(
        "externalcontact/groupchat/list", {"limit": 10, "owner_filter": {"userid_list": ["zhangwei"]}}
    )
    assert listed["group_chat_list"] == [{"chat_id": chat_id, "status": 0}]
    assert len(api.post("externalcontact/groupchat/list", {"limit": 2})["group_chat_list"]) == 2
    assert api.post("externalcontact/groupchat/list", {})["errcode"] == 40058
    got = api.post("externalcontact/groupchat/get", {"chat_id": chat_id, "need_name": 1})["group_chat"]
    assert got["owner"] == "zhangwei"
    members = {m["userid"]: m for m in got["member_list"]}
    assert members["zhangwei"]["type"] == 1 and members[demo["customers"][0]]["type"] == 2
    assert members[demo["customers"][0]]["name"] == "王先生"
    assert api.post("externalcontact/groupchat/get", {"chat_id": "wrNope"})["errcode"] == 40050


def test_onjob_transfer_at_most_300_a_day(api, ctl, demo):
    """Are at most 300 of one owner's chats transferred a simulator day, the rest failing until tomorrow?"""
    chats = _chats(ctl, "zhangwei", 301)
    failed = []
    for start in range(0, 301, 100):
        result = api.post(ONJOB, {"chat_id_list": chats[start : start + 100], "new_owner": "lina"})
        assert result["errcode"] == 0
        failed += result["failed_chat_list"]
    assert [f["chat_id"] for f in failed] == [chats[300]]
    assert failed[0]["errcode"] == 45009
    ctl.advance(86400)
    assert api.post(ONJOB, {"chat_id_list": [chats[300]], "new_owner": "lina"})["failed_chat_list"] == []
    assert api.post("externalcontact/groupchat/get", {"chat_id": chats[300]})["group_chat"]["owner"] == "lina"


def test_transfer_list_size(api, ctl, demo):
    """Must chat_id_list hold 1 to 100 chats (40058 otherwise)?"""
    assert api.post(ONJOB, {"chat_id_list": [], "new_owner": "lina"})["errcode"] == 40058
    assert api.post(ONJOB, {"chat_id_list": ["wr"] * 101, "new_owner": "lina"})["errcode"] == 40058


def test_resigned_transfer_needs_resigned_owner(api, ctl, demo):
    """Does groupchat/transfer fail a chat with 90500 while its owner is on the job, and work after?"""
    [chat_id] = _chats(ctl, "zhangwei", 1)
    result = api.post(RESIGNED, {"chat_id_list": [chat_id], "new_owner": "lina"})
    assert result["failed_chat_list"][0]["errcode"] == 90500
    ctl.resign_user("zhangwei")
    listed = api.post("externalcontact/groupchat/list", {"limit": 10, "status_filter": 1})
    assert listed["group_chat_list"] == [{"chat_id": chat_id, "status": 1}]
    assert (
        api.post(ONJOB, {"chat_id_list": [chat_id], "new_owner": "lina"})["failed_chat_list"][0]["errcode"]
        == 90502
    )
    assert api.post(RESIGNED, {"chat_id_list": [chat_id], "new_owner": "lina"})["failed_chat_list"] == []
    got = api.post("externalcontact/groupchat/get", {"chat_id": chat_id})["group_chat"]
    assert got["owner"] == "lina" and "lina" in [m["userid"] for m in got["member_list"]]


def test_transfer_per_chat_failures(api, ctl, demo):
    """Are unknown chats (90501) and same owner (90504) reported per chat?"""
    [chat_id] = _chats(ctl, "lina", 1)
    result = api.post(ONJOB, {"chat_id_list": ["wrUnknown", chat_id], "new_owner": "lina"})
    assert [(f["chat_id"], f["errcode"]) for f in result["failed_chat_list"]] == [
        ("wrUnknown", 90501),
        (chat_id, 90504),
    ]
