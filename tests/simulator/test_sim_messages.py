"""App messages: per-member limits (dropped silently, but recorded), duplicate check, validation."""

from __future__ import annotations

SEND = "message/send"


def _text(touser: str, content: str = "您有新客户", **extra) -> dict:
    return {"touser": touser, "msgtype": "text", "agentid": 1000002, "text": {"content": content}, **extra}


def _send(api, body: dict) -> dict:
    return api.post(SEND, body, area="agent")


def _counts(ctl, userid: str) -> dict:
    return ctl.state("messages")["messages"]["per_user"].get(
        userid, {"delivered": 0, "dropped": 0, "duplicate": 0}
    )


def test_more_than_30_a_minute_are_dropped_silently(api, ctl, demo):
    """Past 30 messages a minute to one member, does WeCom still answer 0 but drop them (recorded)?"""
    results = [_send(api, _text("zhangwei", f"#{i}")) for i in range(35)]
    assert all(r["errcode"] == 0 and r["msgid"] for r in results)
    assert _counts(ctl, "zhangwei") == {"delivered": 30, "dropped": 5, "duplicate": 0}
    ctl.advance(60)
    assert _send(api, _text("zhangwei", "next minute"))["errcode"] == 0
    assert _counts(ctl, "zhangwei")["delivered"] == 31


def test_limits_are_per_member(api, ctl, demo):
    """Does one member's full minute leave another member's messages delivered?"""
    for i in range(31):
        _send(api, _text("zhangwei", f"#{i}"))
    _send(api, _text("lina"))
    assert _counts(ctl, "lina") == {"delivered": 1, "dropped": 0, "duplicate": 0}


def test_hourly_cap(api, ctl, demo):
    """Is the hourly cap enforced across minutes (shown with msg_per_hour=5)?"""
    ctl.config(msg_per_hour=5)
    for i in range(6):
        _send(api, _text("lina", f"#{i}"))
        ctl.advance(61)
    assert _counts(ctl, "lina") == {"delivered": 5, "dropped": 1, "duplicate": 0}
    ctl.advance(3600)
    _send(api, _text("lina", "later"))
    assert _counts(ctl, "lina")["delivered"] == 6


def test_default_limits_are_30_and_1000(ctl):
    """Are the default per-member limits WeCom's 30 a minute and 1000 an hour?"""
    config = ctl.config()["config"]
    assert (config["msg_per_minute"], config["msg_per_hour"]) == (30, 1000)


def test_unknown_users_go_to_invaliduser(api, ctl, demo):
    """Are unknown users listed in invaliduser while the rest are delivered, and all-invalid 81013?"""
    result = _send(api, _text("zhangwei|ghost|lina"))
    assert result["errcode"] == 0 and result["invaliduser"] == "ghost"
    assert _counts(ctl, "lina")["delivered"] == 1
    assert _send(api, _text("ghost"))["errcode"] == 81013


def test_duplicate_check(api, ctl, demo):
    """With duplicate check on, is a repeat to the same member not delivered again, same msgid?"""
    body = _text("zhangwei", "同一条", enable_duplicate_check=1, duplicate_check_interval=600)
    first, second = _send(api, body), _send(api, body)
    assert second["errcode"] == 0 and second["msgid"] == first["msgid"]
    assert _counts(ctl, "zhangwei") == {"delivered": 1, "dropped": 0, "duplicate": 1}
    ctl.advance(601)
    assert _send(api, body)["msgid"] != first["msgid"]
    assert _counts(ctl, "zhangwei")["delivered"] == 2
    _send(api, _text("zhangwei", "同一条"))  # no duplicate check: delivered again
    assert _counts(ctl, "zhangwei")["delivered"] == 3


def test_textcard_limits(api, demo):
    """Are textcard title over 128 bytes and description over 512 bytes refused with 45002?"""

    def card(title: str, description: str) -> dict:
        return {
            "touser": "zhangwei",
            "msgtype": "textcard",
            "agentid": 1000002,
            "textcard": {"title": title, "description": description, "url": "https://example.com"},
        }

    assert _send(api, card("标" * 43, "d"))["errcode"] == 45002
    assert _send(api, card("t", "描" * 171))["errcode"] == 45002
    assert _send(api, card("标" * 42, "描" * 170))["errcode"] == 0
    assert _send(api, {**card("t", "d"), "textcard": {"title": "t", "url": "u"}})["errcode"] == 41033


def test_message_types_and_agent(api, demo):
    """Are markdown and miniprogram_notice accepted, and a wrong agentid or msgtype refused?"""
    markdown = {
        "touser": "lina",
        "msgtype": "markdown",
        "agentid": 1000002,
        "markdown": {"content": "**hi**"},
    }
    assert _send(api, markdown)["errcode"] == 0
    notice = {
        "touser": "lina",
        "msgtype": "miniprogram_notice",
        "agentid": 1000002,
        "miniprogram_notice": {"appid": "wx_demo_app", "page": "pages/card", "title": "客户来访"},
    }
    assert _send(api, notice)["errcode"] == 0
    assert _send(api, {**markdown, "agentid": 42})["errcode"] == 40056
    assert _send(api, {**markdown, "msgtype": "voice"})["errcode"] == 40008
    assert _send(api, _text("lina", ""))["errcode"] == 44004
