"""Access tokens: issue, expiry, early invalidation, secrets and areas."""

from __future__ import annotations


def test_gettoken_issues_a_token(api):
    """Does gettoken answer an access_token valid 7200 s?"""
    result = api.gettoken(corpsecret=api.config.contact_secret)
    assert result["errcode"] == 0
    assert result["access_token"] and result["expires_in"] == 7200


def test_gettoken_returns_same_token_while_valid(api):
    """Does a second gettoken within validity return the same token, as WeCom does?"""
    first = api.gettoken(corpsecret=api.config.contact_secret)["access_token"]
    assert api.gettoken(corpsecret=api.config.contact_secret)["access_token"] == first


def test_bad_corp_answers_40013(api):
    """Does gettoken with a wrong corp id answer 40013?"""
    assert api.gettoken(corpid="ww_wrong", corpsecret=api.config.contact_secret)["errcode"] == 40013


def test_bad_secret_answers_40001(api):
    """Does gettoken with a wrong secret answer 40001?"""
    assert api.gettoken(corpsecret="nope")["errcode"] == 40001


def test_missing_token_answers_41001(api):
    """Does an API call without access_token answer 41001?"""
    assert api.get("department/list", token="")["errcode"] == 41001


def test_unknown_token_answers_40014(api):
    """Does an API call with a made-up token answer 40014?"""
    assert api.get("department/list", token="garbage")["errcode"] == 40014


def test_token_expires_after_ttl(api, ctl):
    """Does a token answer 42001 once 7200 simulator seconds have passed?"""
    token = api.token()
    assert api.get("department/list", token=token)["errcode"] == 0
    ctl.advance(7201)
    assert api.get("department/list", token=token)["errcode"] == 42001
    fresh = api.token(fresh=True)
    assert fresh != token
    assert api.get("department/list", token=fresh)["errcode"] == 0


def test_token_ttl_is_configurable(api, ctl):
    """Does a shorter token_ttl make tokens expire sooner?"""
    ctl.config(token_ttl=10)
    token = api.token()
    ctl.advance(11)
    assert api.get("department/list", token=token)["errcode"] == 42001


def test_invalidated_token_answers_40014(api, ctl):
    """Does an early invalidation (mode invalid) make the next call answer 40014?"""
    token = api.token()
    assert ctl.invalidate_tokens(mode="invalid") == 1
    assert api.get("department/list", token=token)["errcode"] == 40014


def test_invalidated_token_answers_42001(api, ctl):
    """Does an early invalidation (mode expired) make the next call answer 42001?"""
    token = api.token()
    ctl.invalidate_tokens(area="contact", mode="expired")
    assert api.get("department/list", token=token)["errcode"] == 42001
    assert api.get("department/list", token=api.token(fresh=True))["errcode"] == 0


def test_invalidation_by_area_spares_the_other(api, ctl):
    """Does invalidating the agent tokens leave the contact token working?"""
    contact, agent = api.token("contact"), api.token("agent")
    ctl.invalidate_tokens(area="agent")
    assert api.get("department/list", token=contact)["errcode"] == 0
    assert api.get("department/list", token=agent)["errcode"] == 40014


def test_contact_token_cannot_send_messages(api, demo):
    """Does the contact secret's token answer 48002 on message/send?"""
    body = {"touser": "zhangwei", "msgtype": "text", "agentid": 1000002, "text": {"content": "hi"}}
    assert api.post("message/send", body, area="contact")["errcode"] == 48002


def test_agent_token_cannot_read_customers(api, demo):
    """Does the agent secret's token answer 48002 on externalcontact/*?"""
    result = api.get("externalcontact/get", area="agent", external_userid=demo["customers"][0])
    assert result["errcode"] == 48002


def test_both_tokens_read_the_directory(api, demo):
    """Can either token read department/list?"""
    assert api.get("department/list", area="contact")["errcode"] == 0
    assert api.get("department/list", area="agent")["errcode"] == 0
