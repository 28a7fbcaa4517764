"""Fault injection and WeCom's frequency and concurrency limits."""

from __future__ import annotations

import threading
import time

import pytest
from wechatpy.exceptions import APILimitedException
from wechatpy.work import WeChatClient


def test_injected_45009_hits_only_matching_paths(api, ctl, demo):
    """Does a 45009 fault on one path answer 45009 there and leave other APIs alone?"""
    api.token()
    ctl.set_faults(rate=1.0, errors=[45009], paths=["externalcontact/get"])
    assert api.get("externalcontact/get", external_userid=demo["customers"][0])["errcode"] == 45009
    assert api.get("department/list")["errcode"] == 0
    calls = ctl.state("api_calls")["api_calls"]
    assert calls["externalcontact/get"]["errcodes"] == {"45009": 1}
    ctl.clear_faults()
    assert api.get("externalcontact/get", external_userid=demo["customers"][0])["errcode"] == 0


def test_fault_share_is_roughly_the_rate(api, ctl, demo):
    """Does rate 0.5 fail about half of the calls?"""
    api.token()
    ctl.set_faults(rate=0.5, errors=[-1], paths=["department/list"])
    codes = [api.get("department/list")["errcode"] for _ in range(100)]
    assert 25 <= codes.count(-1) <= 75
    assert set(codes) == {0, -1}


def test_times_fails_only_the_next_calls(api, ctl, demo):
    """With times=2, do exactly the next two matching calls fail?"""
    api.token()
    ctl.set_faults(times=2, errors=[45033], paths=["user/get"])
    codes = [api.get("user/get", userid="lina")["errcode"] for _ in range(4)]
    assert codes == [45033, 45033, 0, 0]


def test_http_5xx_fault(api, ctl, sim, http, demo):
    """Can a fault answer an HTTP 5xx instead of JSON?"""
    token = api.token()
    ctl.set_faults(rate=1.0, errors=[503], paths=["department/list"])
    response = http.get(sim.wecom_api_base + "department/list", params={"access_token": token}, timeout=5)
    assert response.status_code == 503


def test_delay_fault(api, ctl, demo):
    """Does delay_ms slow the matching calls down?"""
    api.token()
    ctl.set_faults(delay_ms=300, paths=["department/list"])
    started = time.monotonic()
    assert api.get("department/list")["errcode"] == 0
    assert time.monotonic() - started >= 0.3


def test_frequency_limit_45009(api, ctl, demo):
    """Past the per-minute limit of one API, does WeCom answer 45009 until the next minute?"""
    api.token()
    ctl.config(rate_limit_per_minute=3)
    ctl.advance(60 - ctl.now() % 60)  # start of a fresh minute
    codes = [api.get("user/get", userid="lina")["errcode"] for _ in range(4)]
    assert codes == [0, 0, 0, 45009]
    assert api.get("department/list")["errcode"] == 0
    ctl.advance(60)
    assert api.get("user/get", userid="lina")["errcode"] == 0


def test_concurrency_limit_45033(api, ctl, demo):
    """Past the concurrency limit, does a call in parallel answer 45033?"""
    api.token()
    ctl.config(max_concurrency=1)
    ctl.set_faults(delay_ms=400, paths=["department/list"])
    results: list[int] = []

    def call() -> None:
        results.append(api.get("department/list")["errcode"])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 45033]


def test_wechatpy_raises_api_limited_on_45009(sim, ctl, demo):
    """Does wechatpy, pointed at the simulator, raise APILimitedException on an injected 45009?"""

    class Client(WeChatClient):
        API_BASE_URL = sim.wecom_api_base

        def fetch_access_token(self):
            return self._fetch_access_token(
                self.API_BASE_URL + "gettoken", {"corpid": self.corp_id, "corpsecret": self.secret}
            )

    client = Client("ww_demo_corp", "demo-contact-secret")
    assert client.department.list()
    ctl.set_faults(rate=1.0, errors=[45009], paths=["department/list"])
    with pytest.raises(APILimitedException):
        client.department.list()


def test_bad_fault_settings_are_refused(ctl):
    """Are unknown fault settings and rates outside 0..1 refused?"""
    from wecom.simulator import SimulatorError

    with pytest.raises(SimulatorError):
        ctl.set_faults(rate=2)
    with pytest.raises(SimulatorError):
        ctl.set_faults(explode=True)
