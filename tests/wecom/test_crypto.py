import pytest

from wecom.crypto import CallbackCrypto, CallbackDecryptError, CallbackSignatureError

VECTOR = {
    "token": "QDG6eK",
    "key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "corp": "wx5823bf96d3bd56c7",
    "signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}


@pytest.fixture
def crypto():
    return CallbackCrypto(VECTOR["token"], VECTOR["key"], VECTOR["corp"])


def test_official_vector(crypto):
    """Does the official WeCom test vector verify and decrypt to 1616140317555161061?"""
    plain = crypto.verify_and_decrypt(VECTOR["signature"], VECTOR["timestamp"], VECTOR["nonce"], VECTOR["echostr"])
    assert plain == "1616140317555161061"


def test_round_trip(crypto):
    """Does what we seal decrypt back to the same text (CJK included)?"""
    sealed = crypto.seal("<xml>欢迎</xml>")
    assert (
        crypto.verify_and_decrypt(sealed["msg_signature"], sealed["timestamp"], sealed["nonce"], sealed["encrypt"])
        == "<xml>欢迎</xml>"
    )


def test_wrong_signature(crypto):
    """Is a tampered signature refused?"""
    with pytest.raises(CallbackSignatureError):
        crypto.verify("0" * 40, VECTOR["timestamp"], VECTOR["nonce"], VECTOR["echostr"])


@pytest.mark.parametrize("garbage", ["", "not base64!", "QUJD", "A" * 44, "P9nAzCzyDtyTWESHep1vC5X9xho="])
def test_garbage_is_one_named_error(crypto, garbage):
    """Does any undecryptable payload raise CallbackDecryptError, never a stray low-level error?"""
    with pytest.raises(CallbackDecryptError):
        crypto.decrypt(garbage)


def test_other_corp_is_refused():
    """Is a payload encrypted for another corp refused (receive id check)?"""
    theirs = CallbackCrypto(VECTOR["token"], VECTOR["key"], "ww_other")
    ours = CallbackCrypto(VECTOR["token"], VECTOR["key"], VECTOR["corp"])
    with pytest.raises(CallbackDecryptError):
        ours.decrypt(theirs.encrypt("<xml/>"))


def test_bad_key_is_refused_at_construction():
    """Is an EncodingAESKey of the wrong length refused up front?"""
    with pytest.raises(ValueError):
        CallbackCrypto("t", "short", "corp")
