"""Callback crypto: the official vector, the simulator's envelopes and URL verification."""

from __future__ import annotations

from wecom.crypto import CallbackCrypto
from wecom.simulator import SimConfig
from wecom.simulator.callbacks import verify_url


def test_official_vector_decrypts():
    """Does the official WeCom test vector verify and decrypt to 1616140317555161061?"""
    crypto = CallbackCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
    echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    plain = crypto.verify_and_decrypt(
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", echostr
    )
    assert plain == "1616140317555161061"


def test_official_vector_through_verify_url(receiver):
    """Does the simulator's URL verification pass against a receiver using the official key?"""
    config = SimConfig(
        token="QDG6eK",
        encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        corp_id="wx5823bf96d3bd56c7",
    )
    receiver.crypto = CallbackCrypto(config.token, config.encoding_aes_key, config.corp_id)
    result = verify_url(config, receiver.url)
    assert result["ok"] and result["matches"], result


def test_dev_default_key_is_valid():
    """Is the development EncodingAESKey a valid 43-character key?"""
    config = SimConfig()
    assert len(config.encoding_aes_key) == 43
    crypto = CallbackCrypto(config.token, config.encoding_aes_key, config.corp_id)
    assert crypto.decrypt(crypto.encrypt("<xml/>")) == "<xml/>"


def test_verify_url_echoes_plaintext(ctl, receiver):
    """Does verify_url() send a signed, encrypted echostr the app can answer in plaintext?"""
    result = ctl.verify_url()
    assert result["ok"] is True
    assert result["body"] == result["expected"]


def test_verify_url_catches_wrong_echo(ctl, receiver):
    """Does verify_url() report failure when the app echoes the wrong text?"""
    receiver.echo_override = '"quoted"'
    assert ctl.verify_url()["ok"] is False


def test_callback_envelope_is_decryptable_with_corp_receive_id(ctl, api, receiver, demo):
    """Is each callback signed, encrypted for receive id = corp id, and enveloped like WeCom's?"""
    way = api.add_way(["zhangwei"], state="vector")
    ctl.scan(config_id=way["config_id"], wait=True)
    event = receiver.wait_for(1)[0]
    assert receiver.rejected == 0
    assert event["_envelope"]["ToUserName"] == "ww_demo_corp"
    assert event["_envelope"]["AgentID"] == "1000002"
    assert event["ToUserName"] == "ww_demo_corp"
    assert event["FromUserName"] == "sys"
    assert event["MsgType"] == "event"
    assert event["Event"] == "change_external_contact"
    assert event["CreateTime"].isdigit()


def test_receiver_with_other_corp_cannot_decrypt(ctl, api, receiver, demo):
    """Does a receiver expecting another corp id reject the simulator's callbacks?"""
    config = SimConfig()
    receiver.crypto = CallbackCrypto(config.token, config.encoding_aes_key, "ww_other_corp")
    way = api.add_way(["zhangwei"])
    result = ctl.scan(config_id=way["config_id"], wait=True)
    assert result["callbacks"][0]["state"] == "failed"
    assert receiver.rejected == 3
