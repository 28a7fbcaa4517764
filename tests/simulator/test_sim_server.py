"""The server, the CLI, the control API's housekeeping and wechatpy end to end."""

from __future__ import annotations

import pytest
from wechatpy.work import WeChatClient

from wecom.simulator import SimConfig, SimulatorError, SimulatorServer, defaults
from wecom.simulator.__main__ import build_server, parse_args


def test_port_zero_picks_a_free_port():
    """Does SimulatorServer on port 0 pick a free port and answer health checks there?"""
    with SimulatorServer(SimConfig()) as server:
        assert server.port != 0 and server.base_url.endswith(str(server.port))
        assert server.control.health()["corp_id"] == defaults.CORP_ID


def test_config_from_env_uses_app_variables():
    """Does SimConfig.from_env read the app's variables and fall back to the dev defaults?"""
    config = SimConfig.from_env({"WECOM_CORP_ID": "ww_env", "MINIPROGRAM_APPID": "wx_env"})
    assert (config.corp_id, config.miniprogram_appid) == ("ww_env", "wx_env")
    assert config.contact_secret == defaults.CONTACT_SECRET and config.agent_id == "1000002"
    assert set(defaults.ENV_DEFAULTS) == {
        "WECOM_CORP_ID",
        "WECOM_AGENT_ID",
        "WECOM_AGENT_SECRET",
        "WECOM_CONTACT_SECRET",
        "WECOM_TOKEN",
        "WECOM_ENCODING_AES_KEY",
        "MINIPROGRAM_APPID",
        "MINIPROGRAM_SECRET",
    }


def test_cli_arguments():
    """Does the CLI build a seeded server with the given callback URL and time scale?"""
    args = parse_args(
        ["--port", "0", "--callback-url", "http://127.0.0.1:9/cb", "--time-scale", "60", "--seed-demo"]
    )
    server = build_server(args)
    assert server.world.config.callback_url == "http://127.0.0.1:9/cb"
    assert server.world.clock.time_scale == 60
    assert len([u for u in server.world.users.values() if u.active]) == 5
    assert parse_args([]).port == defaults.PORT


def test_reset_empties_the_world(ctl, demo):
    """Does reset clear the world, and reset(seed_demo=True) seed it again?"""
    ctl.reset()
    assert ctl.state("counts")["counts"]["users"] == 0
    seeded = ctl.reset(seed_demo=True)["seeded"]
    assert len(seeded["users"]) == 5 and len(seeded["customers"]) == 4


def test_unknown_api_and_section(sim, http, ctl):
    """Does an unserved API answer 404 JSON and an unknown state section 400?"""
    response = http.get(sim.wecom_api_base + "nothing/here", timeout=5)
    assert response.status_code == 404 and response.json()["errcode"] == 404
    with pytest.raises(SimulatorError) as error:
        ctl.state("nope")
    assert error.value.status == 400


def test_runtime_config_refuses_identity_changes(ctl):
    """Can the control API change rules but not the corp's identity?"""
    assert ctl.config(msg_per_minute=10)["changed"] == {"msg_per_minute": 10}
    with pytest.raises(SimulatorError):
        ctl.config(corp_id="ww_other")


def test_wechatpy_work_client_end_to_end(sim, ctl, receiver, demo):
    """Does wechatpy's unmodified work client create a way, read a scanned customer and welcome them?"""

    class Client(WeChatClient):
        API_BASE_URL = sim.wecom_api_base

        def fetch_access_token(self):
            return self._fetch_access_token(
                self.API_BASE_URL + "gettoken", {"corpid": self.corp_id, "corpsecret": self.secret}
            )

    contact = Client("ww_demo_corp", "demo-contact-secret")
    way = contact.external_contact.add_contact_way(type=2, scene=2, state="e2e", user=["zhangwei", "lina"])
    scanned = ctl.scan(config_id=way["config_id"])
    event = receiver.wait_for(1)[0]
    customer = contact.external_contact.get(event["ExternalUserID"])
    assert customer["follow_user"][0]["state"] == "e2e"
    sent = contact.external_contact.send_welcome_msg(
        {"welcome_code": event["WelcomeCode"], "text": {"content": "欢迎"}}
    )
    assert sent["errcode"] == 0 and scanned["welcome_code"] == event["WelcomeCode"]
    page = contact.external_contact.batch_get_by_user("zhangwei", limit=10)
    assert page["external_contact_list"]
    agent = Client("ww_demo_corp", "demo-agent-secret")
    assert agent.message.send_text(1000002, ["zhangwei"], "新客户")["invaliduser"] == ""
