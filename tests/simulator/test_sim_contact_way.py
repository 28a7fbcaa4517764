"""「联系我」contact ways: the documented rules of add/get/update/del/list_contact_way."""

from __future__ import annotations

ADD = "externalcontact/add_contact_way"


def test_single_way_needs_exactly_one_user(api, demo):
    """Does a type 1 (single) way refuse two users with 40058?"""
    assert api.post(ADD, {"type": 1, "scene": 2, "user": ["zhangwei", "lina"]})["errcode"] == 40058
    assert api.post(ADD, {"type": 1, "scene": 2, "user": []})["errcode"] == 40058
    assert api.post(ADD, {"type": 1, "scene": 2, "user": ["zhangwei"]})["errcode"] == 0


def test_multi_way_allows_at_most_100_users(api, ctl, demo):
    """Does a type 2 way refuse more than 100 users (parties expanded) with 40058?"""
    ctl.add_department("大客户部", id=9)
    users = [f"rep{i:03d}" for i in range(101)]
    for userid in users:
        ctl.add_user(userid, department=[9])
    assert api.post(ADD, {"type": 2, "scene": 2, "user": users})["errcode"] == 40058
    assert api.post(ADD, {"type": 2, "scene": 2, "party": [9]})["errcode"] == 40058
    assert api.post(ADD, {"type": 2, "scene": 2, "user": users[:100]})["errcode"] == 0


def test_state_and_remark_at_most_30_characters(api, demo):
    """Are state and remark limited to 30 characters (40058 past that)?"""
    base = {"type": 1, "scene": 2, "user": ["zhangwei"]}
    assert api.post(ADD, {**base, "state": "s" * 31})["errcode"] == 40058
    assert api.post(ADD, {**base, "remark": "备" * 31})["errcode"] == 40058
    assert api.post(ADD, {**base, "state": "渠" * 30, "remark": "r" * 30})["errcode"] == 0


def test_unknown_user_or_party_is_refused(api, demo):
    """Does a way for an unknown user answer 60111, and for an unknown party 60123?"""
    assert api.post(ADD, {"type": 1, "scene": 2, "user": ["ghost"]})["errcode"] == 60111
    assert api.post(ADD, {"type": 2, "scene": 2, "party": [77]})["errcode"] == 60123


def test_type_and_scene_are_checked(api, demo):
    """Are type outside 1..2 and scene outside 1..2 refused with 40058?"""
    assert api.post(ADD, {"type": 3, "scene": 2, "user": ["zhangwei"]})["errcode"] == 40058
    assert api.post(ADD, {"type": 1, "scene": 5, "user": ["zhangwei"]})["errcode"] == 40058


def test_qr_code_only_for_scene_2_and_served(api, http, demo):
    """Is qr_code returned only for scene 2, and does the simulator serve it as a PNG?"""
    mini = api.post(ADD, {"type": 1, "scene": 1, "user": ["zhangwei"]})
    assert "qr_code" not in mini
    qr = api.post(ADD, {"type": 1, "scene": 2, "user": ["zhangwei"]})
    response = http.get(qr["qr_code"], timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


def test_get_contact_way_defaults(api, demo):
    """Does get_contact_way show what was configured, with skip_verify defaulting to true?"""
    way = api.add_way(["zhangwei", "lina"], state="expo", remark="展会")
    got = api.post("externalcontact/get_contact_way", {"config_id": way["config_id"]})["contact_way"]
    assert got["type"] == 2 and got["scene"] == 2 and got["skip_verify"] is True
    assert got["state"] == "expo" and got["remark"] == "展会" and got["user"] == ["zhangwei", "lina"]
    assert got["qr_code"] == way["qr_code"]


def test_update_overwrites_given_fields_only_and_is_counted(api, ctl, demo):
    """Does update_contact_way overwrite only the fields given, and is each call counted?"""
    way = api.add_way(["zhangwei", "lina"], state="expo", remark="展会")
    update = {"config_id": way["config_id"], "user": ["wangfang"]}
    assert api.post("externalcontact/update_contact_way", update)["errcode"] == 0
    got = api.post("externalcontact/get_contact_way", {"config_id": way["config_id"]})["contact_way"]
    assert got["user"] == ["wangfang"] and got["state"] == "expo" and got["remark"] == "展会"
    state = ctl.state("api_calls", "contact_ways")
    assert state["api_calls"]["externalcontact/update_contact_way"]["calls"] == 1
    assert state["contact_ways"][0]["updates"] == 1


def test_update_keeps_single_way_rule(api, demo):
    """Does updating a single way to two users answer 40058?"""
    way = api.add_way(["zhangwei"])
    update = {"config_id": way["config_id"], "user": ["zhangwei", "lina"]}
    assert api.post("externalcontact/update_contact_way", update)["errcode"] == 40058


def test_delete_contact_way(api, demo):
    """Is a deleted way gone (get answers 40058)?"""
    way = api.add_way(["zhangwei"])
    assert api.post("externalcontact/del_contact_way", {"config_id": way["config_id"]})["errcode"] == 0
    assert api.post("externalcontact/get_contact_way", {"config_id": way["config_id"]})["errcode"] == 40058


def test_list_contact_way_pages_with_cursor(api, demo):
    """Does list_contact_way page with a real cursor and refuse a limit over 1000?"""
    created = [api.add_way(["zhangwei"], state=f"s{i}")["config_id"] for i in range(5)]
    seen, cursor = [], ""
    while True:
        page = api.post("externalcontact/list_contact_way", {"limit": 2, "cursor": cursor})
        seen += [w["config_id"] for w in page["contact_way"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == created
    assert api.post("externalcontact/list_contact_way", {"limit": 1001})["errcode"] == 40058
    assert api.post("externalcontact/list_contact_way", {"cursor": "bogus!"})["errcode"] == 40058


def test_malformed_json_answers_47001(api, demo):
    """Does a POST body that is not JSON answer 47001?"""
    assert api.post(ADD, raw=b"{not json")["errcode"] == 47001
    assert api.post(ADD, raw=b"[1, 2]")["errcode"] == 47001


def test_wrong_field_types_answer_40058(api, demo):
    """Does a field of the wrong JSON type answer 40058 rather than a server error?"""
    assert api.post(ADD, {"type": 1, "scene": 2, "user": "zhangwei"})["errcode"] == 40058
    assert api.post("externalcontact/list_contact_way", {"limit": "many"})["errcode"] == 40058
    assert (
        api.post("externalcontact/send_welcome_msg", {"welcome_code": "x", "text": "hi"})["errcode"] == 40058
    )


def test_qr_url_can_be_scanned_through_the_control_api(api, ctl, http, demo):
    """Does the QR image encode a control URL that performs the scan when POSTed?"""
    way = api.add_way(["lina"], state="poster")
    encoded = http.get(way["qr_code"], params={"format": "text"}, timeout=5).json()["encodes"]
    scanned = http.post(encoded, json={}, timeout=5).json()
    assert (scanned["userid"], scanned["state"]) == ("lina", "poster")
