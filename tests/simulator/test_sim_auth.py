"""OAuth codes and JS tickets (the agent secret's side)."""

from __future__ import annotations


def test_oauth_code_gives_userid_once(api, ctl, demo):
    """Does an OAuth code resolve to the rep's userid once, then answer 40029?"""
    code = ctl.mint_oauth_code("lina")
    assert api.get("auth/getuserinfo", area="agent", code=code)["userid"] == "lina"
    assert api.get("auth/getuserinfo", area="agent", code=code)["errcode"] == 40029
    assert api.get("auth/getuserinfo", area="agent")["errcode"] == 41008


def test_legacy_getuserinfo(api, ctl, demo):
    """Does the legacy user/getuserinfo (used by wechatpy) answer UserId?"""
    code = ctl.mint_oauth_code("zhangwei")
    assert api.get("user/getuserinfo", area="agent", code=code)["UserId"] == "zhangwei"


def test_tickets(api, ctl, demo):
    """Are jsapi and agent_config tickets stable while valid and renewed after 7200 s?"""
    first = api.get("get_jsapi_ticket", area="agent")
    assert first["ticket"] and first["expires_in"] == 7200
    assert api.get("get_jsapi_ticket", area="agent")["ticket"] == first["ticket"]
    agent = api.get("ticket/get", area="agent", type="agent_config")
    assert agent["ticket"] != first["ticket"]
    assert api.get("ticket/get", area="agent", type="other")["errcode"] == 91040
    assert api.get("get_jsapi_ticket", area="contact")["errcode"] == 48002
    ctl.advance(7201)
    assert api.get("get_jsapi_ticket", area="agent")["ticket"] != first["ticket"]
