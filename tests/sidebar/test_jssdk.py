"""JS-SDK signatures and tickets: the rule, the cache (one fetch, refresh before expiry) and
/sidebar/v1/jssdk-config, against the simulator over HTTP."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import requests

from wecom import jssdk
from wecom.client import agent_client


def _sha1(ticket: str, nonce: str, timestamp, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()  # noqa: S324 - WeCom's JS-SDK rule is SHA-1


def _sim_ticket(sim, path: str, **params) -> str:
    """The ticket the simulator holds now, fetched independently of the app."""
    http = requests.Session()
    http.trust_env = False
    cfg = sim.world.config
    token = http.get(
        sim.wecom_api_base + "gettoken", params={"corpid": cfg.corp_id, "corpsecret": cfg.agent_secret}, timeout=10
    ).json()["access_token"]
    return http.get(sim.wecom_api_base + path, params={"access_token": token, **params}, timeout=10).json()["ticket"]


def _calls(sim, path: str) -> int:
    """Tickets the simulator handed out on ``path`` (calls it answered with errcode 0)."""
    return sim.world.counters.to_dict().get(path, {}).get("errcodes", {}).get("0", 0)


def test_signature_follows_the_documented_rule():
    """Does the signature match the JS-SDK documentation's worked example?"""
    ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    signed = jssdk.signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value")
    assert signed == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_signature_ignores_the_fragment():
    """Is the part after # left out of what is signed, as WeCom does?"""
    assert jssdk.signature("t", "n", 1, "https://a.example/p?q=1#frag") == _sha1("t", "n", 1, "https://a.example/p?q=1")


@pytest.fixture
def rep(sidebar_browser, demo_corp):
    browser = sidebar_browser()
    browser.sign_in("lina")
    return browser


def test_jssdk_config_verifies_independently(rep, sim, app):
    """Do config and agentConfig carry signatures we can recompute from the simulator's tickets?"""
    url = "http://localhost/sidebar?from=chat#top"
    resp = rep.client.get("/sidebar/v1/jssdk-config", query_string={"url": url})
    assert resp.status_code == 200, resp.json
    config, agent = resp.json["config"], resp.json["agentConfig"]
    assert config["appId"] == agent["corpid"] == app.config["WECOM_CORP_ID"]
    assert agent["agentid"] == app.config["WECOM_AGENT_ID"]
    assert "getCurExternalContact" in agent["jsApiList"]
    bare = "http://localhost/sidebar?from=chat"
    jsapi_ticket = _sim_ticket(sim, "get_jsapi_ticket")
    agent_ticket = _sim_ticket(sim, "ticket/get", type="agent_config")
    assert config["signature"] == _sha1(jsapi_ticket, config["nonceStr"], config["timestamp"], bare)
    assert agent["signature"] == _sha1(agent_ticket, agent["nonceStr"], agent["timestamp"], bare)
    assert abs(config["timestamp"] - time.time()) < 60


def test_tickets_are_cached(rep, sim):
    """Do many page loads cost WeCom one fetch of each ticket?"""
    for _ in range(5):
        resp = rep.client.get("/sidebar/v1/jssdk-config", query_string={"url": "http://localhost/sidebar"})
        assert resp.status_code == 200
    assert _calls(sim, "get_jsapi_ticket") == 1
    assert _calls(sim, "ticket/get") == 1


def test_tickets_are_refreshed_after_expiry(rep, sim):
    """Once a ticket nears its end (short ttl, clock moved past it), is a new one fetched?"""
    sim.control.config(ticket_ttl=2)
    url = {"url": "http://localhost/sidebar"}
    first = rep.client.get("/sidebar/v1/jssdk-config", query_string=url).json
    rep.client.get("/sidebar/v1/jssdk-config", query_string=url)
    assert _calls(sim, "get_jsapi_ticket") == 1
    time.sleep(1.1)  # past the refresh point (half of a 2 s lifetime)
    sim.control.advance(3)  # and past WeCom's expiry: it now hands out a new ticket
    second = rep.client.get("/sidebar/v1/jssdk-config", query_string=url).json
    assert _calls(sim, "get_jsapi_ticket") == 2 and _calls(sim, "ticket/get") == 2
    new_ticket = _sim_ticket(sim, "get_jsapi_ticket")
    config = second["config"]
    assert config["signature"] == _sha1(new_ticket, config["nonceStr"], config["timestamp"], url["url"])
    assert first["config"]["signature"] != _sha1(
        new_ticket, first["config"]["nonceStr"], first["config"]["timestamp"], url["url"]
    )


def test_refresh_comes_before_expiry_on_the_sim_clock(app, sim):
    """Measured on the (time-scaled) simulator clock, is a ticket refreshed in its last 300 s?"""
    sim.control.config(time_scale=50)
    cache = jssdk.TicketCache(agent_client(), app.config["WECOM_AGENT_ID"], app.extensions["redis"], sim.world.now)
    first = cache.get("agent_config")
    assert cache.get("agent_config") == first and _calls(sim, "ticket/get") == 1
    sim.control.advance(7200 - jssdk.REFRESH_MARGIN + 1)
    assert cache.get("agent_config") == first  # refreshed early: WeCom still answers the same one
    assert _calls(sim, "ticket/get") == 2
    sim.control.advance(jssdk.REFRESH_MARGIN)
    assert cache.get("agent_config") != first
    assert _calls(sim, "ticket/get") == 3


def test_one_fetch_under_concurrency(app, sim):
    """When twelve page loads need a ticket at once, does only one of them fetch it?"""
    cache = jssdk.TicketCache(agent_client(), app.config["WECOM_AGENT_ID"], app.extensions["redis"])
    cache.client.fetch_access_token()  # the token is not under test here
    sim.control.set_faults(delay_ms=200, delay_rate=1.0, paths=["get_jsapi_ticket"])
    barrier = threading.Barrier(12)
    results: list[str] = []

    def load():
        barrier.wait()
        results.append(cache.get("jsapi"))

    threads = [threading.Thread(target=load) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 12 and len(set(results)) == 1
    assert _calls(sim, "get_jsapi_ticket") == 1


@pytest.mark.parametrize(
    "url",
    ["https://evil.example/sidebar", "javascript:alert(1)", "/sidebar", "", "http://localhost/" + "a" * 2100],
)
def test_jssdk_config_signs_only_our_pages(rep, url):
    """Is a signature refused (422, with the field named) for anything but a page of this site?"""
    resp = rep.client.get("/sidebar/v1/jssdk-config", query_string={"url": url})
    assert resp.status_code == 422
    assert "url" in resp.json["error"]["fields"]


def test_jssdk_config_needs_a_signed_in_rep(app, demo_corp):
    """Can someone who is not signed in get signatures?"""
    resp = app.test_client().get("/sidebar/v1/jssdk-config", query_string={"url": "http://localhost/sidebar"})
    assert resp.status_code == 401


def test_wecom_refusing_the_ticket_is_not_a_500(rep, sim):
    """When WeCom fails the ticket fetch, does the page get 503 (transient) or 502, never a 500?"""
    sim.control.set_faults(rate=1.0, errors=[-1], paths=["get_jsapi_ticket"])
    resp = rep.client.get("/sidebar/v1/jssdk-config", query_string={"url": "http://localhost/sidebar"})
    assert resp.status_code == 503 and resp.json["error"]["code"] == "wecom_unavailable"
    sim.control.set_faults(rate=1.0, errors=[40056], paths=["get_jsapi_ticket"])
    resp = rep.client.get("/sidebar/v1/jssdk-config", query_string={"url": "http://localhost/sidebar"})
    assert resp.status_code == 502
