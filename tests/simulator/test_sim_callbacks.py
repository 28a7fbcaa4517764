"""Callback delivery: background sending, retries, duplicates, reordering, recording."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def way(api, demo) -> str:
    return api.add_way(["zhangwei", "lina"], state="cb")["config_id"]


def test_retries_until_200(ctl, receiver, way):
    """When the app answers 500 twice then 200, are there 3 attempts and one delivery?"""
    receiver.script(500, 500)
    result = ctl.scan(config_id=way, wait=True)
    [delivery] = result["callbacks"]
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 200]
    assert delivery["state"] == "delivered"
    assert len(receiver.received) == 3 and len(receiver.accepted) == 1
    assert receiver.received[0]["_plaintext"] == receiver.received[2]["_plaintext"]


def test_gives_up_after_3_attempts(ctl, receiver, way):
    """When the app keeps failing, does WeCom stop after 3 attempts in all?"""
    receiver.script(500, 502, 503, 500)
    [delivery] = ctl.scan(config_id=way, wait=True)["callbacks"]
    assert delivery["state"] == "failed" and len(delivery["attempts"]) == 3
    assert receiver.accepted == []


def test_slow_answer_counts_as_failure(ctl, receiver, way):
    """Does an answer slower than the callback timeout count as a failed attempt?"""
    ctl.config(callback_timeout=0.3)
    receiver.script(200, delays=(0.6,))
    [delivery] = ctl.scan(config_id=way, wait=True)["callbacks"]
    assert delivery["attempts"][0]["error"] and delivery["attempts"][1]["status"] == 200
    assert delivery["state"] == "delivered"


def test_delivery_is_off_the_request_path(ctl, receiver, way):
    """Does a control action return before a slow app has answered its callback?"""
    receiver.script(200, delays=(1.0,))
    started = time.monotonic()
    result = ctl.scan(config_id=way)
    assert time.monotonic() - started < 0.5
    assert result["callbacks"][0]["state"] in ("queued", "sending")
    receiver.wait_for(1)


def test_duplicate_fault_delivers_twice(ctl, receiver, way):
    """With the duplicate fault, does the app receive the same event twice?"""
    ctl.set_faults(callback_duplicate_rate=1.0)
    ctl.scan(config_id=way)
    first, second = receiver.wait_for(2)
    assert first["_plaintext"] == second["_plaintext"]
    records = ctl.flush_callbacks()
    assert records[1]["duplicate_of"] == records[0]["id"]


def test_shuffle_fault_reorders_a_batch(ctl, receiver, way):
    """With the shuffle fault, does a held batch arrive out of order?"""
    ctl.set_faults(callback_shuffle=True)
    ctl.hold_callbacks()
    sent = [ctl.scan(config_id=way)["external_userid"] for _ in range(8)]
    ctl.release_callbacks()
    arrived = [e["ExternalUserID"] for e in receiver.wait_for(8)]
    assert sorted(arrived) == sorted(sent) and arrived != sent


def test_order_is_kept_without_faults(ctl, receiver, way):
    """Without faults, do callbacks arrive in the order they happened?"""
    sent = [ctl.scan(config_id=way)["external_userid"] for _ in range(5)]
    assert [e["ExternalUserID"] for e in receiver.wait_for(5)] == sent


def test_every_attempt_is_recorded_in_state(ctl, receiver, way):
    """Does the control state list every callback with its attempts and HTTP statuses?"""
    receiver.script(500)
    ctl.scan(config_id=way)
    records = ctl.flush_callbacks()
    assert records[0]["change_type"] == "add_external_contact"
    assert [a["status"] for a in records[0]["attempts"]] == [500, 200]
    assert ctl.state("callbacks")["callbacks"] == records


def test_without_callback_url_events_are_recorded_not_sent(ctl, receiver, way):
    """With no callback URL, are events recorded as skipped and nothing sent?"""
    ctl.config(callback_url=None)
    [delivery] = ctl.scan(config_id=way, wait=True)["callbacks"]
    assert delivery["state"] == "skipped" and receiver.received == []
