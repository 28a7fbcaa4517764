"""The rep sidebar (聊天工具栏) in a real browser: WeCom sign-in through the simulator's OAuth
page, the page's JS-SDK handshake, the current chat's customer, notes and tags.

The one part that cannot run here is the WeCom client app itself, which gives the page its
``wx`` object. The test injects a stand-in before the page loads that behaves as the client
does: it checks the ``wx.config`` / ``wx.agentConfig`` signatures against the simulator's
JS-SDK tickets (a bad one fails, as in WeCom) and answers ``getCurExternalContact`` with the
customer of the open chat.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select

from tests.browser.helpers import shot, wait_until

WX_DOUBLE = """
(() => {
  const EXTERNAL_USERID = %(external_userid)s;
  const calls = (window.__wxCalls = []);
  let pageConfig = null;
  window.wx = {
    config(cfg) { calls.push("config"); pageConfig = cfg; },
    agentConfig(cfg) {
      calls.push("agentConfig");
      const { success, fail, ...signed } = cfg;
      window.__wecomCheck(location.href.split("#")[0], JSON.stringify(pageConfig), JSON.stringify(signed))
        .then((problem) => (problem ? fail({ errMsg: "agentConfig:fail " + problem })
                                    : success({ errMsg: "agentConfig:ok" })));
    },
    invoke(name, args, callback) {
      calls.push("invoke:" + name);
      callback(name === "getCurExternalContact"
        ? { err_msg: "getCurExternalContact:ok", userId: EXTERNAL_USERID }
        : { err_msg: name + ":fail no permission" });
    },
  };
})();
"""


def _signature(ticket: str, signed: dict, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={signed['nonceStr']}&timestamp={signed['timestamp']}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()  # noqa: S324 - WeCom's JS-SDK signature is SHA-1


def wecom_client_check(sim):
    """What the WeCom client verifies before a page may call getCurExternalContact: both
    signatures, made with the simulator's current tickets, for this page's URL. Answers the
    problem, or None."""
    cfg = sim.world.config

    def check(url: str, config_json: str, agent_json: str) -> str | None:
        config, agent = json.loads(config_json or "null"), json.loads(agent_json)
        with sim.world.lock:
            tickets = {kind: value for kind, (value, _expires) in sim.world.tickets.items()}
        if not config or config.get("appId") != cfg.corp_id:
            return "wx.config was not called for this corp"
        if config.get("signature") != _signature(tickets.get("jsapi", ""), config, url):
            return "wx.config: invalid signature"
        if agent.get("corpid") != cfg.corp_id or str(agent.get("agentid")) != cfg.agent_id:
            return "agentConfig names another corp or app"
        if agent.get("signature") != _signature(tickets.get("agent_config", ""), agent, url):
            return "agentConfig: invalid signature"
        if "getCurExternalContact" not in agent.get("jsApiList", []):
            return "getCurExternalContact is not in jsApiList"
        return None

    return check


def tag_names(page) -> list[str]:
    """The tag chips' names (without their remove buttons)."""
    return page.locator('[data-testid="tag"] > span').all_inner_texts()


def test_rep_signs_in_sees_the_chat_customer_adds_a_note_and_a_tag(page, stack, sim, db):
    """Does a rep signed in through WeCom see their chat's customer, and do a note and a tag stick (in WeCom too)?"""
    from app.models import Tag

    wang = stack["customers"][0]  # 王先生, zhangwei's customer in the demo corp
    page.set_viewport_size({"width": 420, "height": 900})  # the chat toolbar is a narrow pane
    page.expose_function("__wecomCheck", wecom_client_check(sim))
    page.add_init_script(WX_DOUBLE % {"external_userid": json.dumps(wang)})

    page.goto("/sidebar")
    # Signed out: WeCom's OAuth page (the simulator's), where the member opening the app is chosen.
    assert page.url.startswith(sim.oauth_base)
    page.get_by_test_id("sim-oauth-user-zhangwei").click()
    page.wait_for_url("**/sidebar")

    page.get_by_test_id("customer-360").wait_for(state="visible")
    assert page.get_by_test_id("customer-name").inner_text() == "王先生"
    assert page.evaluate("window.__wxCalls") == ["config", "agentConfig", "invoke:getCurExternalContact"]
    assert page.get_by_test_id("sidebar-status").get_attribute("data-state") == "ready"
    assert tag_names(page) == ["客户来源: 展会"]  # the tag WeCom has on the relation (mirrored by the sync)

    page.get_by_test_id("note-body").fill("想要展会报价单，周五前回电")
    page.get_by_test_id("note-submit").click()
    page.get_by_test_id("note-text").filter(has_text="想要展会报价单").wait_for()
    assert page.get_by_test_id("note-body").input_value() == ""

    page.get_by_test_id("tag-add-select").select_option(label="客户来源: 官网")
    page.get_by_test_id("tag-add").click()
    page.get_by_test_id("tag").filter(has_text="官网").wait_for()
    website, expo = (db.session.scalar(select(Tag).where(Tag.name == name)) for name in ("官网", "展会"))

    def wecom_tags():
        follows = sim.control.state("follows")["follows"]
        return next(f["tag_id"] for f in follows if f["userid"] == "zhangwei" and f["external_userid"] == wang)

    # WeCom has the new tag on zhangwei's relation (mark_tag), next to the one it had.
    assert wait_until(lambda: website.wecom_tag_id in wecom_tags())
    assert expo.wecom_tag_id in wecom_tags()
    assert sim.control.state("api_calls")["api_calls"]["externalcontact/mark_tag"]["calls"] == 1
    shot(page, "sidebar")

    # The note is the customer's for good: a reload (a new 360 from the server) still shows it.
    page.reload()
    page.get_by_test_id("customer-360").wait_for(state="visible")
    assert "想要展会报价单，周五前回电" in page.get_by_test_id("note-text").all_inner_texts()
    assert sorted(tag_names(page)) == ["客户来源: 官网", "客户来源: 展会"]
