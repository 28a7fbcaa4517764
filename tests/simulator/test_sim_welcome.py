"""Welcome messages: the code is valid 20 s and works once."""

from __future__ import annotations

import time

import pytest

SEND = "externalcontact/send_welcome_msg"


@pytest.fixture
def scanned(api, ctl, demo) -> dict:
    return ctl.scan(config_id=api.add_way(["zhangwei"], state="w")["config_id"])


def test_welcome_code_works_once(api, ctl, scanned):
    """Does a used welcome code answer 41050?"""
    body = {"welcome_code": scanned["welcome_code"], "text": {"content": "欢迎!"}}
    assert api.post(SEND, body)["errcode"] == 0
    assert api.post(SEND, body)["errcode"] == 41050
    welcomes = ctl.state("welcomes")["welcomes"]
    assert len(welcomes) == 1
    assert welcomes[0]["external_userid"] == scanned["external_userid"] and welcomes[0]["text"] == "欢迎!"


def test_welcome_code_expires_in_real_seconds(api, ctl, scanned):
    """Does a welcome code older than its TTL (real time by default) answer 41050?"""
    ctl.config(welcome_code_ttl=0.2)
    time.sleep(0.3)
    assert (
        api.post(SEND, {"welcome_code": scanned["welcome_code"], "text": {"content": "hi"}})["errcode"]
        == 41050
    )


def test_welcome_code_ignores_sim_clock_by_default(api, ctl, scanned):
    """Does advancing the simulator clock leave a fresh welcome code valid (20 s are real seconds)?"""
    ctl.advance(3600)
    assert (
        api.post(SEND, {"welcome_code": scanned["welcome_code"], "text": {"content": "hi"}})["errcode"] == 0
    )


def test_welcome_code_on_sim_clock_expires_after_20s(api, ctl, demo):
    """With welcome_code_clock "sim", does a code answer 41050 after 20 simulator seconds?"""
    ctl.config(welcome_code_clock="sim")
    scanned = ctl.scan(config_id=api.add_way(["lina"])["config_id"])
    ctl.advance(21)
    assert (
        api.post(SEND, {"welcome_code": scanned["welcome_code"], "text": {"content": "hi"}})["errcode"]
        == 41050
    )


def test_welcome_code_after_chat_started_answers_41051(api, ctl, scanned):
    """Does a welcome code answer 41051 once the two are already chatting?"""
    ctl.start_chat(scanned["userid"], scanned["external_userid"])
    assert (
        api.post(SEND, {"welcome_code": scanned["welcome_code"], "text": {"content": "hi"}})["errcode"]
        == 41051
    )


def test_missing_and_unknown_codes(api, scanned):
    """Does a missing code answer 41049 and an unknown one 41050?"""
    assert api.post(SEND, {"text": {"content": "hi"}})["errcode"] == 41049
    assert api.post(SEND, {"welcome_code": "made-up", "text": {"content": "hi"}})["errcode"] == 41050


def test_content_limits_do_not_use_up_the_code(api, scanned):
    """Is content over 4000 bytes refused (45002) without using up the code?"""
    code = scanned["welcome_code"]
    assert api.post(SEND, {"welcome_code": code, "text": {"content": "字" * 1334}})["errcode"] == 45002
    assert api.post(SEND, {"welcome_code": code})["errcode"] == 40058
    assert api.post(SEND, {"welcome_code": code, "text": {"content": "字" * 1333}})["errcode"] == 0


def test_at_most_nine_attachments(api, scanned):
    """Are more than 9 attachments refused, and malformed ones too?"""
    link = {"msgtype": "link", "link": {"title": "名片", "url": "https://example.com/card"}}
    code = scanned["welcome_code"]
    assert api.post(SEND, {"welcome_code": code, "attachments": [link] * 10})["errcode"] == 40058
    bad = {"msgtype": "link", "link": {"title": "no url"}}
    assert api.post(SEND, {"welcome_code": code, "attachments": [bad]})["errcode"] == 40058
    assert api.post(SEND, {"welcome_code": code, "attachments": [link] * 9})["errcode"] == 0
