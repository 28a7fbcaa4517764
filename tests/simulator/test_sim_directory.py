"""The directory: departments, users, and the change_contact callbacks."""

from __future__ import annotations


def test_department_list_all_and_subtree(api, demo):
    """Does department/list answer all departments, or one and its descendants?"""
    assert {d["id"] for d in api.get("department/list")["department"]} == {1, 2, 3, 4, 5}
    assert [d["id"] for d in api.get("department/list", id=2)["department"]] == [2, 3, 4]
    assert api.get("department/list", id=99)["errcode"] == 60123


def test_user_list_fetch_child(api, demo):
    """Does user/list include sub-department members only with fetch_child?"""
    assert api.get("user/list", department_id=2)["userlist"] == []
    users = api.get("user/list", department_id=2, fetch_child=1)["userlist"]
    assert {u["userid"] for u in users} == {"zhangwei", "lina", "wangfang", "liuyang"}
    assert users[0]["status"] == 1 and "main_department" in users[0]


def test_user_simplelist(api, demo):
    """Does user/simplelist answer userid, name and department only?"""
    users = api.get("user/simplelist", department_id=5)["userlist"]
    assert users == [
        {"userid": "chenjing", "name": "陈静", "department": [5], "open_userid": users[0]["open_userid"]}
    ]


def test_user_get_unknown_and_resigned(api, ctl, demo):
    """Does user/get answer 60111 for unknown users and for users who resigned?"""
    assert api.get("user/get", userid="zhangwei")["name"] == "张伟"
    assert api.get("user/get", userid="ghost")["errcode"] == 60111
    ctl.resign_user("zhangwei")
    assert api.get("user/get", userid="zhangwei")["errcode"] == 60111


def test_create_user_callback(ctl, receiver):
    """Does a new rep with notify send change_contact/create_user?"""
    ctl.add_user("newbie", "新人", department=[1], notify=True, wait=True)
    event = receiver.wait_for(1)[0]
    assert (event["Event"], event["ChangeType"], event["UserID"]) == (
        "change_contact",
        "create_user",
        "newbie",
    )
    assert event["Name"] == "新人"


def test_rename_user_moves_customers(api, ctl, receiver, demo):
    """Does a userid change send update_user with NewUserID and carry the rep's customers over?"""
    ctl.update_user("zhangwei", new_userid="zhangwei2", wait=True)
    event = receiver.wait_for(1)[0]
    assert (event["ChangeType"], event["UserID"], event["NewUserID"]) == (
        "update_user",
        "zhangwei",
        "zhangwei2",
    )
    assert api.get("externalcontact/list", userid="zhangwei2")["external_userid"] == [demo["customers"][0]]


def test_resign_sends_delete_user(ctl, receiver, demo):
    """Does a rep leaving send change_contact/delete_user with UserID only?"""
    ctl.resign_user("lina", wait=True)
    event = receiver.wait_for(1)[0]
    assert (event["Event"], event["ChangeType"], event["UserID"]) == ("change_contact", "delete_user", "lina")
    assert "NewUserID" not in event
