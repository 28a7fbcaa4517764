"""Build callbacks exactly as WeCom sends them: plaintext event XML, sealed with our crypto."""

from __future__ import annotations

import time

from wecom.crypto import CallbackCrypto


def event_xml(corp_id: str, event: str, change_type: str = "", **fields) -> str:
    fields.setdefault("CreateTime", str(int(time.time())))
    parts = [
        f"<ToUserName><![CDATA[{corp_id}]]></ToUserName>",
        "<FromUserName><![CDATA[sys]]></FromUserName>",
        "<MsgType><![CDATA[event]]></MsgType>",
        f"<Event><![CDATA[{event}]]></Event>",
    ]
    if change_type:
        parts.append(f"<ChangeType><![CDATA[{change_type}]]></ChangeType>")
    parts += [f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()]
    return "<xml>" + "".join(parts) + "</xml>"


def crypto_for(app) -> CallbackCrypto:
    return CallbackCrypto(app.config["WECOM_TOKEN"], app.config["WECOM_ENCODING_AES_KEY"], app.config["WECOM_CORP_ID"])


def post_event(client, app, xml: str):
    params, body = crypto_for(app).envelope(xml)
    return client.post("/wecom/callback", query_string=params, data=body, content_type="text/xml")
