"""The WeChat side: mini-program login (jscode2session), access token, phone numbers."""

from __future__ import annotations

import pytest
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException


@pytest.fixture
def wx(sim, http):
    base = sim.wechat_api_base

    class WeChat:
        def session(self, code: str, appid: str = "wx_demo_app", secret: str = "demo-mp-secret") -> dict:
            params = {"appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"}
            return http.get(base + "sns/jscode2session", params=params, timeout=5).json()

        def token(self, secret: str = "demo-mp-secret") -> dict:
            params = {"grant_type": "client_credential", "appid": "wx_demo_app", "secret": secret}
            return http.get(base + "cgi-bin/token", params=params, timeout=5).json()

        def phone(self, code: str, token: str) -> dict:
            return http.post(
                base + "wxa/business/getuserphonenumber",
                params={"access_token": token},
                data=f'{{"code": "{code}"}}'.encode(),
                timeout=5,
            ).json()

    return WeChat()


def test_jscode2session_joins_the_customer_by_unionid(api, ctl, wx, demo):
    """Does a wx.login code resolve to the openid and the unionid WeCom shows for the same person (OneID)?"""
    customer = demo["customers"][0]
    minted = ctl.mint_js_code(external_userid=customer)
    session = wx.session(minted["code"])
    assert session["openid"] == minted["openid"] and session["session_key"]
    unionid = api.get("externalcontact/get", external_userid=customer)["external_contact"]["unionid"]
    assert session["unionid"] == unionid


def test_new_wechat_user_gets_ids(ctl, wx):
    """Does a code minted for a new WeChat user give a fresh openid and unionid?"""
    minted = ctl.mint_js_code(name="访客")
    session = wx.session(minted["code"])
    assert session["unionid"] == minted["unionid"] and session["openid"] == minted["openid"]


def test_js_code_is_single_use(ctl, wx, demo):
    """Does a used or unknown wx.login code answer 40029?"""
    code = ctl.mint_js_code(external_userid=demo["customers"][1])["code"]
    assert wx.session(code)["errcode"] == 0
    assert wx.session(code)["errcode"] == 40029
    assert wx.session("made-up")["errcode"] == 40029


def test_js_code_expires(ctl, wx, demo):
    """Does a wx.login code answer 40029 after 5 simulator minutes?"""
    code = ctl.mint_js_code(external_userid=demo["customers"][1])["code"]
    ctl.advance(301)
    assert wx.session(code)["errcode"] == 40029


def test_wrong_app_credentials(ctl, wx, demo):
    """Are a wrong appid (40013) and a wrong secret (40125) refused?"""
    code = ctl.mint_js_code(external_userid=demo["customers"][1])["code"]
    assert wx.session(code, appid="wx_other")["errcode"] == 40013
    assert wx.session(code, secret="nope")["errcode"] == 40125


def test_too_frequent_logins_answer_45011(ctl, wx, demo):
    """Past the per-user login frequency, does jscode2session answer 45011?"""
    ctl.config(jscode_per_minute=2)
    customer = demo["customers"][2]
    codes = [ctl.mint_js_code(external_userid=customer)["code"] for _ in range(3)]
    assert [wx.session(c).get("errcode", 0) for c in codes] == [0, 0, 45011]


def test_phone_number(ctl, wx, demo):
    """Does getuserphonenumber give the phone behind a single-use code, with the mini-program token?"""
    token = wx.token()["access_token"]
    code = ctl.mint_phone_code(external_userid=demo["customers"][0], phone="13912345678")["code"]
    info = wx.phone(code, token)["phone_info"]
    assert info == {
        **info,
        "phoneNumber": "13912345678",
        "purePhoneNumber": "13912345678",
        "countryCode": "86",
    }
    assert wx.phone(code, token)["errcode"] == 40029
    assert wx.phone(code, "")["errcode"] == 41001
    assert wx.phone(code, "garbage")["errcode"] == 40001
    assert wx.token(secret="nope")["errcode"] == 40001


def test_wecom_token_is_not_a_wechat_token(api, ctl, wx, demo):
    """Is a WeCom token refused by the WeChat side (40001), and a WeChat token by WeCom (40014)?"""
    code = ctl.mint_phone_code(external_userid=demo["customers"][0])["code"]
    assert wx.phone(code, api.token())["errcode"] == 40001
    assert api.get("department/list", token=wx.token()["access_token"])["errcode"] == 40014


def test_wechat_token_expires(ctl, wx, demo):
    """Does the mini-program token answer 42001 after its 7200 s?"""
    token = wx.token()["access_token"]
    code = ctl.mint_phone_code(external_userid=demo["customers"][0])["code"]
    ctl.advance(7201)
    assert wx.phone(code, token)["errcode"] == 42001


def test_wechatpy_mini_program_client(sim, ctl, demo):
    """Does wechatpy's WeChat client log a user in and read a phone number from the simulator?"""

    class Client(WeChatClient):
        API_BASE_URL = sim.wechat_api_base + "cgi-bin/"

        def fetch_access_token(self):
            return self._fetch_access_token(
                self.API_BASE_URL + "token",
                {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    client = Client("wx_demo_app", "demo-mp-secret")
    client.wxa.API_BASE_URL = sim.wechat_api_base
    minted = ctl.mint_js_code(external_userid=demo["customers"][0])
    assert client.wxa.code_to_session(minted["code"])["unionid"] == minted["unionid"]
    phone_code = ctl.mint_phone_code(external_userid=demo["customers"][0], phone="13700000000")["code"]
    assert client.wxa.get_phone_number(phone_code)["phone_info"]["purePhoneNumber"] == "13700000000"
    with pytest.raises(WeChatClientException):
        client.wxa.code_to_session(minted["code"])
