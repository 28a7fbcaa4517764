"""/wecom/callback: verification, and intake that stores once and refuses bad input."""

import pytest

from app.models import CallbackEvent
from tests.wecom.helpers import crypto_for, event_xml, post_event


def _add_xml(app, external="wm-1", code="WC1", create_time="1700000000"):
    return event_xml(
        app.config["WECOM_CORP_ID"],
        "change_external_contact",
        "add_external_contact",
        UserID="zhangsan",
        ExternalUserID=external,
        State="expo",
        WelcomeCode=code,
        CreateTime=create_time,
    )


def test_url_verification_echoes_the_plaintext(client, app):
    """Does GET answer the decrypted echostr alone, as WeCom's URL check requires?"""
    sealed = crypto_for(app).seal("1616140317555161061")
    resp = client.get(
        "/wecom/callback",
        query_string={
            "msg_signature": sealed["msg_signature"],
            "timestamp": sealed["timestamp"],
            "nonce": sealed["nonce"],
            "echostr": sealed["encrypt"],
        },
    )
    assert resp.status_code == 200
    assert resp.get_data(as_text=True) == "1616140317555161061"


def test_url_verification_with_a_bad_signature_is_403(client, app):
    """Does GET with a forged signature answer 403?"""
    sealed = crypto_for(app).seal("x")
    resp = client.get(
        "/wecom/callback", query_string={**sealed, "msg_signature": "0" * 40, "echostr": sealed["encrypt"]}
    )
    assert resp.status_code == 403


def test_event_is_stored_once_and_enqueued(client, app, db):
    """Is a callback stored and queued, and WeCom's retry of it acknowledged with no second row?"""
    xml = _add_xml(app)
    assert post_event(client, app, xml).get_data(as_text=True) == "success"
    assert post_event(client, app, xml).status_code == 200  # re-encrypted with a new nonce, like a retry
    rows = db.session.query(CallbackEvent).all()
    assert len(rows) == 1
    assert rows[0].change_type == "add_external_contact" and rows[0].payload["WelcomeCode"] == "WC1"
    assert app.extensions["queues"]["high"].count == 1  # welcome codes jump the queue


def test_same_second_scans_are_distinct_events(client, app, db):
    """Do two customers scanning one code in the same second make two events (the WxJava bug)?"""
    post_event(client, app, _add_xml(app, external="wm-1", code="A"))
    post_event(client, app, _add_xml(app, external="wm-2", code="B"))
    assert db.session.query(CallbackEvent).count() == 2


@pytest.mark.parametrize(
    "mutate, status",
    [
        (lambda p, b: ({**p, "msg_signature": "f" * 40}, b), 403),
        (lambda p, b: ({k: v for k, v in p.items() if k != "nonce"}, b), 400),
        (lambda p, b: (p, b"not xml at all"), 400),
        (lambda p, b: (p, b"<xml><Encrypt></Encrypt></xml>"), 400),
        (lambda p, b: (p, b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml><Encrypt>&a;</Encrypt></xml>"), 400),
    ],
)
def test_bad_callbacks_change_nothing(client, app, db, mutate, status):
    """Do forged or malformed callbacks get a clear 4xx, with nothing stored or enqueued?"""
    params, body = crypto_for(app).envelope(_add_xml(app))
    params, body = mutate(params, body)
    resp = client.post("/wecom/callback", query_string=params, data=body)
    assert resp.status_code == status
    assert "error" in resp.json
    assert db.session.query(CallbackEvent).count() == 0
    assert all(q.count == 0 for q in app.extensions["queues"].all())


def test_signed_garbage_is_400(client, app, db):
    """Is a correctly signed but undecryptable Encrypt refused with 400?"""
    from wecom.crypto import signature

    encrypt = "QUJDREVGR0hJSktMTU5PUA=="
    params = {"timestamp": "1", "nonce": "n", "msg_signature": signature(app.config["WECOM_TOKEN"], "1", "n", encrypt)}
    resp = client.post("/wecom/callback", query_string=params, data=f"<xml><Encrypt>{encrypt}</Encrypt></xml>")
    assert resp.status_code == 400
    assert db.session.query(CallbackEvent).count() == 0


def test_payload_for_another_corp_is_400(client, app, db):
    """Is a payload encrypted for another corp id refused?"""
    from wecom.crypto import CallbackCrypto

    other = CallbackCrypto(app.config["WECOM_TOKEN"], app.config["WECOM_ENCODING_AES_KEY"], "ww_other")
    params, body = other.envelope(_add_xml(app))
    assert client.post("/wecom/callback", query_string=params, data=body).status_code == 400
    assert db.session.query(CallbackEvent).count() == 0


def test_decrypted_payload_without_event_is_400(client, app, db):
    """Is a well-sealed payload that is not an event refused?"""
    assert post_event(client, app, "<xml><Hello>1</Hello></xml>").status_code == 400
    assert post_event(client, app, "plain text").status_code == 400
    assert db.session.query(CallbackEvent).count() == 0


def test_oversized_body_is_413(client, app, db):
    """Is a body larger than any WeCom callback refused with 413 before it is read?"""
    params, _ = crypto_for(app).envelope(_add_xml(app))
    body = b"<xml><Encrypt>" + b"A" * (app.config["CALLBACK_MAX_BYTES"] + 10) + b"</Encrypt></xml>"
    assert client.post("/wecom/callback", query_string=params, data=body).status_code == 413
    assert db.session.query(CallbackEvent).count() == 0
