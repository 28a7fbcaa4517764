"""Reading customers, batch cursors, idconvert and corp tags."""

from __future__ import annotations

BATCH = "externalcontact/batch/get_by_user"


def test_get_unknown_and_unrelated_customers(api, demo):
    """Does externalcontact/get answer 40096 for an unknown id and 84061 without a relation?"""
    assert api.get("externalcontact/get", external_userid="wmNobody")["errcode"] == 40096
    not_a_customer = demo["customers"][3]
    assert api.get("externalcontact/get", external_userid=not_a_customer)["errcode"] == 84061


def test_get_shows_tags_with_group_names(api, demo):
    """Does follow_user carry the relation's corp tags with group and tag names?"""
    follow = api.get("externalcontact/get", external_userid=demo["customers"][0])["follow_user"][0]
    assert follow["tags"] == [
        {"group_name": "客户来源", "tag_name": "展会", "tag_id": follow["tags"][0]["tag_id"], "type": 1}
    ]
    assert follow["remark"] == "展会客户"


def test_list_and_follow_user_list(api, demo):
    """Do externalcontact/list (84061 when empty) and get_follow_user_list list customers and reps?"""
    assert api.get("externalcontact/list", userid="zhangwei")["external_userid"] == [demo["customers"][0]]
    assert api.get("externalcontact/list", userid="chenjing")["errcode"] == 84061
    assert api.get("externalcontact/list", userid="ghost")["errcode"] == 60111
    assert set(api.get("externalcontact/get_follow_user_list")["follow_user"]) == set(demo["users"])


def test_batch_get_by_user_pages_with_cursor(api, ctl, demo):
    """Does batch/get_by_user return every customer exactly once across cursor pages?"""
    way = api.add_way(["chenjing"])
    added = [ctl.scan(config_id=way["config_id"])["external_userid"] for _ in range(7)]
    seen, cursor, pages = [], "", 0
    while True:
        page = api.post(BATCH, {"userid_list": ["chenjing"], "cursor": cursor, "limit": 3})
        assert page["errcode"] == 0
        seen += [c["external_contact"]["external_userid"] for c in page["external_contact_list"]]
        assert all(c["follow_info"]["userid"] == "chenjing" for c in page["external_contact_list"])
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and sorted(seen) == sorted(added) and len(set(seen)) == 7


def test_batch_get_by_user_limits(api, demo):
    """Does batch/get_by_user refuse >100 userids and bad cursors, and cap limit at 100?"""
    assert api.post(BATCH, {"userid_list": [f"u{i}" for i in range(101)]})["errcode"] == 40058
    assert api.post(BATCH, {"userid_list": ["zhangwei"], "cursor": "xx"})["errcode"] == 40058
    result = api.post(BATCH, {"userid_list": ["zhangwei", "lina"], "limit": 1000})
    assert result["errcode"] == 0 and len(result["external_contact_list"]) == 2
    follow_info = result["external_contact_list"][0]["follow_info"]
    assert set(follow_info) >= {"userid", "remark", "createtime", "tag_id", "add_way", "state"}


def test_idconvert_customer_and_pending(api, ctl, demo):
    """Does idconvert give the external_userid of a customer and a stable pending_id otherwise?"""
    state = ctl.state("customers")["customers"]
    by_id = {c["external_userid"]: c for c in state}
    customer, stranger = by_id[demo["customers"][0]], by_id[demo["customers"][3]]
    path = "idconvert/unionid_to_external_userid"
    result = api.post(path, {"unionid": customer["unionid"], "openid": customer["openid"], "subject_type": 0})
    assert result["external_userid"] == customer["external_userid"]
    pending = api.post(path, {"unionid": stranger["unionid"], "openid": stranger["openid"]})
    assert pending["pending_id"] and "external_userid" not in pending
    assert (
        api.post(path, {"unionid": stranger["unionid"], "openid": stranger["openid"]})["pending_id"]
        == pending["pending_id"]
    )
    assert api.post(path, {"unionid": customer["unionid"], "openid": stranger["openid"]})["errcode"] == 40058


def test_corp_tag_library(api, demo):
    """Do add/edit/del_corp_tag follow the rules (dedupe, 40071 clash, 40068 unknown, empty group removed)?"""
    added = api.post(
        "externalcontact/add_corp_tag",
        {"group_name": "意向", "tag": [{"name": "高"}, {"name": "高"}, {"name": "低"}]},
    )
    group = added["tag_group"]
    assert [t["name"] for t in group["tag"]] == ["高", "低"] and group["group_id"].startswith("et")
    clash = api.post("externalcontact/add_corp_tag", {"group_id": group["group_id"], "tag": [{"name": "高"}]})
    assert clash["errcode"] == 40071
    high, low = (t["id"] for t in group["tag"])
    assert api.post("externalcontact/edit_corp_tag", {"id": high, "name": "很高"})["errcode"] == 0
    assert api.post("externalcontact/edit_corp_tag", {"id": low, "name": "很高"})["errcode"] == 40071
    assert api.post("externalcontact/edit_corp_tag", {"id": "etNope"})["errcode"] == 40068
    listed = api.post("externalcontact/get_corp_tag_list", {"tag_id": [high]})["tag_group"]
    assert listed[0]["tag"] == [
        {"id": high, "name": "很高", "create_time": listed[0]["tag"][0]["create_time"], "order": 0}
    ]
    assert api.post("externalcontact/del_corp_tag", {"tag_id": [high, low]})["errcode"] == 0
    groups = api.post("externalcontact/get_corp_tag_list", {})["tag_group"]
    assert group["group_id"] not in [g["group_id"] for g in groups]


def test_deleted_tag_leaves_customers(api, demo):
    """Does deleting a tag group remove its tags from every customer?"""
    group_id = demo["tag_group"]
    assert api.post("externalcontact/del_corp_tag", {"group_id": [group_id]})["errcode"] == 0
    follow = api.get("externalcontact/get", external_userid=demo["customers"][0])["follow_user"][0]
    assert follow["tags"] == []


def test_mark_tag_rules(api, demo):
    """Does mark_tag refuse unknown tags (40068), no relation (84061) and an empty change (40058)?"""
    tag_id = api.post("externalcontact/get_corp_tag_list", {})["tag_group"][0]["tag"][2]["id"]
    customer = demo["customers"][0]
    assert (
        api.post(
            "externalcontact/mark_tag",
            {"userid": "zhangwei", "external_userid": customer, "add_tag": ["etNope"]},
        )["errcode"]
        == 40068
    )
    assert (
        api.post(
            "externalcontact/mark_tag", {"userid": "lina", "external_userid": customer, "add_tag": [tag_id]}
        )["errcode"]
        == 84061
    )
    assert (
        api.post("externalcontact/mark_tag", {"userid": "zhangwei", "external_userid": customer})["errcode"]
        == 40058
    )
    body = {"userid": "zhangwei", "external_userid": customer, "add_tag": [tag_id]}
    assert api.post("externalcontact/mark_tag", body)["errcode"] == 0
    body = {"userid": "zhangwei", "external_userid": customer, "remove_tag": [tag_id]}
    assert api.post("externalcontact/mark_tag", body)["errcode"] == 0
    tags = api.get("externalcontact/get", external_userid=customer)["follow_user"][0]["tags"]
    assert tag_id not in [t["tag_id"] for t in tags]
