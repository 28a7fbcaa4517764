"""The web OAuth page, auth/getuserinfo codes and the JS-SDK tickets, over real HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from wecom.simulator import SimulatorError


def _authorize_url(sim, **overrides) -> str:
    params = {
        "appid": sim.world.config.corp_id,
        "redirect_uri": "https://app.example/sidebar/oauth/callback?keep=1",
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "abc123",
        "agentid": sim.world.config.agent_id,
    }
    params.update(overrides)
    return f"{sim.oauth_base}?{urlencode(params)}#wechat_redirect"


def test_authorize_page_lists_active_members(sim, ctl, demo, http):
    """Does the authorize page offer every active member, and no resigned one?"""
    ctl.resign_user("chenjing")
    page = http.get(_authorize_url(sim), timeout=10)
    assert page.status_code == 200
    assert 'data-testid="sim-oauth-user-lina"' in page.text
    assert "sim-oauth-user-chenjing" not in page.text


def test_authorize_redirects_with_a_code_that_works_once(sim, ctl, api, demo):
    """Does choosing a member send the browser back with a code auth/getuserinfo takes once?"""
    location = ctl.authorize(_authorize_url(sim), "lina")
    target = urlsplit(location)
    assert (target.scheme, target.netloc, target.path) == ("https", "app.example", "/sidebar/oauth/callback")
    query = parse_qs(target.query)
    assert query["state"] == ["abc123"] and query["keep"] == ["1"]
    code = query["code"][0]
    assert api.get("auth/getuserinfo", area="agent", code=code)["userid"] == "lina"
    assert api.get("auth/getuserinfo", area="agent", code=code)["errcode"] == 40029


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"appid": "ww_other"}, "appid"),
        ({"response_type": "token"}, "response_type"),
        ({"scope": "snsapi_userinfo"}, "scope"),
        ({"agentid": "999"}, "agentid"),
        ({"state": "has spaces"}, "state"),
        ({"state": "x" * 129}, "state"),
        ({"redirect_uri": "/relative"}, "redirect_uri"),
    ],
)
def test_authorize_refuses_bad_requests(sim, demo, http, override, message):
    """Does the authorize page refuse what WeCom refuses, without minting a code?"""
    response = http.get(_authorize_url(sim, **override), params={"userid": "lina"}, allow_redirects=False)
    assert response.status_code == 400
    assert message in response.text
    assert not sim.world.codes


def test_authorize_refuses_unknown_or_resigned_member(sim, ctl, demo):
    """Can a code be had for someone who is not (or no longer) a member?"""
    ctl.resign_user("chenjing")
    for userid in ("nobody", "chenjing"):
        with pytest.raises(SimulatorError) as caught:
            ctl.authorize(_authorize_url(sim), userid)
        assert caught.value.status == 404


def test_oauth_code_expires_on_the_sim_clock(ctl, api, demo):
    """Does an OAuth code stop working after code_ttl (300 s) of simulator time?"""
    code = ctl.mint_oauth_code("wangfang")
    ctl.advance(301)
    assert api.get("auth/getuserinfo", area="agent", code=code)["errcode"] == 40029


def test_oauth_needs_the_agent_token(ctl, api, demo):
    """Is auth/getuserinfo closed to the customer-contact secret's token (48002)?"""
    code = ctl.mint_oauth_code("lina")
    assert api.get("auth/getuserinfo", area="contact", code=code)["errcode"] == 48002
    assert api.get("auth/getuserinfo", area="agent", code=code)["userid"] == "lina"


def test_ticket_calls_are_counted(ctl, api, demo):
    """Does the control API count ticket fetches per endpoint, so callers can prove caching?"""
    api.get("get_jsapi_ticket", area="agent")
    api.get("get_jsapi_ticket", area="agent")
    api.get("ticket/get", area="agent", type="agent_config")
    calls = ctl.state("api_calls")["api_calls"]
    assert calls["get_jsapi_ticket"]["calls"] == 2
    assert calls["ticket/get"]["calls"] == 1


def test_tickets_follow_the_time_scale(ctl, api, demo):
    """With the clock sped up, does a ticket expire after ticket_ttl simulator seconds?"""
    ctl.config(ticket_ttl=60, time_scale=1000)
    first = api.get("ticket/get", area="agent", type="agent_config")
    assert 0 < first["expires_in"] <= 60
    ctl.advance(61)
    second = api.get("ticket/get", area="agent", type="agent_config")
    assert second["ticket"] != first["ticket"]
