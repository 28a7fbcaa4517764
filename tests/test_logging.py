import json
import logging

from app.logs import JsonFormatter, redact


def test_request_logs_are_json_with_a_request_id(client, caplog):
    """Is every request logged as JSON carrying the request id echoed to the client?"""
    formatter = JsonFormatter()
    with caplog.at_level(logging.INFO, logger="app.request"):
        resp = client.get("/healthz", headers={"X-Request-ID": "req-12345678"})
    assert resp.headers["X-Request-ID"] == "req-12345678"
    line = json.loads(formatter.format(caplog.records[-1]))
    assert line["msg"] == "request" and line["status"] == 200 and line["path"] == "/healthz"


def test_secrets_never_reach_a_log_line(app, caplog):
    """Are configured secrets, access tokens and bearer tokens scrubbed from log lines?"""
    secret = app.config["WECOM_CONTACT_SECRET"]
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_scrm", False))
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "GET /cgi-bin/gettoken?corpid=ww&corpsecret=%s then ?access_token=TOKEN123 "
        "Authorization: Bearer abc.def key=%s",
        (secret, app.config["WECOM_ENCODING_AES_KEY"]),
        None,
    )
    out = handler.formatter.format(record)
    assert secret not in out and "TOKEN123" not in out and "abc.def" not in out
    assert app.config["WECOM_ENCODING_AES_KEY"] not in out


def test_redact_keeps_ordinary_text():
    """Does redaction leave text without credentials untouched?"""
    assert redact("customer wm123 added by zhangsan") == "customer wm123 added by zhangsan"
