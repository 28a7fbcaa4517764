"""Customer transfers: 24 h acceptance, refusals, limits, the 90-day rule, resigned reps."""

from __future__ import annotations

import time

import pytest

TRANSFER = "externalcontact/transfer_customer"
RESULT = "externalcontact/transfer_result"
RESIGNED = "externalcontact/resigned/transfer_customer"
RESIGNED_RESULT = "externalcontact/resigned/transfer_result"
DAY = 86400


@pytest.fixture
def customers_of(api, ctl, demo):
    """Give a rep ``n`` new customers; return their external_userids."""

    def make(userid: str, n: int) -> list[str]:
        way = api.add_way([userid])
        return [ctl.scan(config_id=way["config_id"])["external_userid"] for _ in range(n)]

    return make


def _transfer(api, customers, handover="zhangwei", takeover="lina", path=TRANSFER) -> dict:
    return api.post(
        path, {"handover_userid": handover, "takeover_userid": takeover, "external_userid": customers}
    )


def _statuses(api, handover="zhangwei", takeover="lina", path=RESULT) -> dict[str, int]:
    result = api.post(path, {"handover_userid": handover, "takeover_userid": takeover})
    return {c["external_userid"]: c["status"] for c in result["customer"]}


def test_transfer_waits_then_completes_after_24h(api, ctl, receiver, customers_of):
    """Does a transfer wait (status 2) and complete (status 1) 24 h later, moving the customer?"""
    [customer] = customers_of("zhangwei", 1)
    result = _transfer(api, [customer])
    assert result["customer"] == [{"external_userid": customer, "errcode": 0}]
    assert _statuses(api) == {customer: 2}
    ctl.advance(DAY - 60)
    assert _statuses(api) == {customer: 2}
    ctl.advance(61, wait=True)
    assert _statuses(api) == {customer: 1}
    follows = api.get("externalcontact/get", external_userid=customer)["follow_user"]
    assert [f["userid"] for f in follows] == ["lina"]
    deleted = receiver.of("del_external_contact")
    assert [(e["UserID"], e["Source"]) for e in deleted] == [("zhangwei", "DELETE_BY_TRANSFER")]


def test_takeover_time_is_the_automatic_takeover_while_waiting(api, ctl, customers_of):
    """While waiting, is takeover_time the future automatic takeover (request + 24 h)?"""
    [customer] = customers_of("zhangwei", 1)
    now = ctl.now()
    _transfer(api, [customer])
    entry = api.post(RESULT, {"handover_userid": "zhangwei", "takeover_userid": "lina"})["customer"][0]
    assert abs(entry["takeover_time"] - (now + DAY)) < 5


def test_time_scale_completes_transfers_in_real_seconds(api, ctl, customers_of):
    """With a large time scale, does a transfer complete on its own within a second?"""
    [customer] = customers_of("zhangwei", 1)
    _transfer(api, [customer])
    ctl.config(time_scale=400000)
    deadline = time.monotonic() + 3
    while _statuses(api) != {customer: 1} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _statuses(api) == {customer: 1}


def test_refused_transfer_sends_transfer_fail(api, ctl, receiver, customers_of):
    """Does a refused transfer become status 3 and send transfer_fail customer_refused?"""
    [customer] = customers_of("zhangwei", 1)
    _transfer(api, [customer])
    ctl.refuse_transfer(customer, wait=True)
    assert _statuses(api) == {customer: 3}
    [event] = receiver.of("transfer_fail")
    assert (event["FailReason"], event["UserID"], event["ExternalUserID"]) == (
        "customer_refused",
        "lina",
        customer,
    )
    ctl.advance(DAY + 1)
    assert _statuses(api) == {customer: 3}
    assert api.get("externalcontact/get", external_userid=customer)["follow_user"][0]["userid"] == "zhangwei"


def test_taker_at_limit_by_completion_gets_status_4(api, ctl, receiver, customers_of):
    """When the taker is full by completion, is it status 4 with transfer_fail customer_limit_exceed?"""
    first, second = customers_of("zhangwei", 2)
    ctl.set_contact_limit("lina", 2)  # lina already follows one demo customer
    assert [c["errcode"] for c in _transfer(api, [first, second])["customer"]] == [0, 0]
    ctl.advance(DAY + 1, wait=True)
    assert _statuses(api) == {first: 1, second: 4}
    [event] = receiver.of("transfer_fail")
    assert (event["FailReason"], event["ExternalUserID"]) == ("customer_limit_exceed", second)


def test_taker_already_full_answers_40099(api, ctl, customers_of):
    """Is a transfer to a taker already at their limit refused per customer with 40099?"""
    [customer] = customers_of("zhangwei", 1)
    ctl.set_contact_limit("lina", 1)
    assert _transfer(api, [customer])["customer"][0]["errcode"] == 40099


def test_third_transfer_in_90_days_answers_40128(api, ctl, customers_of):
    """Can a customer be transferred only twice in 90 days (40128 on the third)?"""
    [customer] = customers_of("zhangwei", 1)
    hops = [("zhangwei", "lina"), ("lina", "wangfang")]
    for handover, takeover in hops:
        assert _transfer(api, [customer], handover, takeover)["customer"][0]["errcode"] == 0
        ctl.advance(DAY + 1)
        assert _statuses(api, handover, takeover) == {customer: 1}
    assert _transfer(api, [customer], "wangfang", "liuyang")["customer"][0]["errcode"] == 40128
    ctl.advance(90 * DAY)
    assert _transfer(api, [customer], "wangfang", "liuyang")["customer"][0]["errcode"] == 0


def test_per_customer_errcodes(api, ctl, customers_of, demo):
    """Are same user (40130), not a follower (40131) and in progress (40129) reported per customer?"""
    mine, other = customers_of("zhangwei", 1)[0], demo["customers"][2]
    assert _transfer(api, [mine], "zhangwei", "zhangwei")["customer"][0]["errcode"] == 40130
    assert _transfer(api, [other])["customer"][0]["errcode"] == 40131
    assert _transfer(api, [mine])["customer"][0]["errcode"] == 0
    assert _transfer(api, [mine])["customer"][0]["errcode"] == 40129
    assert _transfer(api, [mine], "zhangwei", "wangfang")["customer"][0]["errcode"] == 40129


def test_batch_limits(api, customers_of):
    """Are >100 customers a call (40003) and a success message over 200 characters (40058) refused?"""
    customers = customers_of("zhangwei", 1)
    assert _transfer(api, customers * 101)["errcode"] == 40003
    body = {
        "handover_userid": "zhangwei",
        "takeover_userid": "lina",
        "external_userid": customers,
        "transfer_success_msg": "x" * 201,
    }
    assert api.post(TRANSFER, body)["errcode"] == 40058
    assert _transfer(api, customers, "zhangwei", "ghost")["errcode"] == 60111


def test_customer_leaving_mid_transfer_is_status_5(api, ctl, customers_of):
    """If the customer deletes the handover rep while waiting, does the transfer end with status 5?"""
    [customer] = customers_of("zhangwei", 1)
    _transfer(api, [customer])
    ctl.customer_deletes_rep(customer, "zhangwei")
    ctl.advance(DAY + 1)
    assert _statuses(api) == {customer: 5}


def test_transfer_result_pages(api, ctl, customers_of):
    """Does transfer_result page its customers with a cursor?"""
    customers = customers_of("zhangwei", 5)
    _transfer(api, customers)
    ctl.config(transfer_page_size=2)
    seen, cursor = [], ""
    while True:
        page = api.post(RESULT, {"handover_userid": "zhangwei", "takeover_userid": "lina", "cursor": cursor})
        assert len(page["customer"]) <= 2
        seen += [c["external_userid"] for c in page["customer"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == customers


def test_resigned_transfer_needs_a_resigned_handover(api, customers_of):
    """Does resigned/transfer_customer answer 40097 while the handover user is still on the job?"""
    customers = customers_of("zhangwei", 1)
    assert _transfer(api, customers, path=RESIGNED)["errcode"] == 40097


def test_resigned_transfer_lifecycle(api, ctl, customers_of):
    """After a rep resigns, can their customers be assigned and do they complete after 24 h?"""
    customers = customers_of("zhangwei", 2)
    ctl.resign_user("zhangwei")
    assert _transfer(api, customers, path=TRANSFER)["errcode"] == 60111
    result = _transfer(api, customers, path=RESIGNED)
    assert [c["errcode"] for c in result["customer"]] == [0, 0]
    assert set(_statuses(api, path=RESIGNED_RESULT).values()) == {2}
    ctl.advance(DAY + 1)
    assert set(_statuses(api, path=RESIGNED_RESULT).values()) == {1}
    assert set(customers) <= set(api.get("externalcontact/list", userid="lina")["external_userid"])


def test_unassigned_list_pages_and_shrinks(api, ctl, customers_of, demo):
    """Does get_unassigned_list page the resigned reps' customers and drop those being assigned?"""
    customers = customers_of("zhangwei", 4) + [demo["customers"][0]]
    ctl.resign_user("zhangwei")
    rows, cursor = [], ""
    while True:
        page = api.post("externalcontact/get_unassigned_list", {"page_size": 2, "cursor": cursor})
        rows += page["info"]
        assert page["is_last"] == (not page["next_cursor"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(r["external_userid"] for r in rows) == sorted(customers)
    assert {r["handover_userid"] for r in rows} == {"zhangwei"} and all(r["dimission_time"] for r in rows)
    _transfer(api, customers[:3], path=RESIGNED)
    remaining = api.post("externalcontact/get_unassigned_list", {"page_size": 1000})
    assert sorted(r["external_userid"] for r in remaining["info"]) == sorted(customers[3:])
    assert remaining["is_last"] is True
    assert api.post("externalcontact/get_unassigned_list", {"page_size": 1001})["errcode"] == 40058
