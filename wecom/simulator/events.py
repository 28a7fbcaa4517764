"""Plaintext callback events, rendered as the XML WeCom encrypts and posts.

Envelope fields come first in WeCom's order (ToUserName = corp id, FromUserName = ``sys``,
CreateTime, MsgType = ``event``, Event, ChangeType), then the event's own fields. Strings are
CDATA, numbers bare, lists become ``<Item>`` children (MemChangeList).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXTERNAL_CONTACT = "change_external_contact"
CONTACT = "change_contact"
EXTERNAL_CHAT = "change_external_chat"


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA: split it across two sections.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(name: str, value: Any) -> str:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return f"<{name}>{value}</{name}>"
    if isinstance(value, (list, tuple)):
        return f"<{name}>" + "".join(_element("Item", v) for v in value) + f"</{name}>"
    return f"<{name}>{_cdata(str(value))}</{name}>"


@dataclass
class Event:
    """One callback event before encryption."""

    event: str
    change_type: str | None
    create_time: int
    fields: dict[str, Any] = field(default_factory=dict)

    def to_xml(self, corp_id: str) -> str:
        parts = [
            _element("ToUserName", corp_id),
            _element("FromUserName", "sys"),
            _element("CreateTime", self.create_time),
            _element("MsgType", "event"),
            _element("Event", self.event),
        ]
        if self.change_type:
            parts.append(_element("ChangeType", self.change_type))
        parts.extend(_element(k, v) for k, v in self.fields.items() if v is not None)
        return "<xml>" + "".join(parts) + "</xml>"

    def to_dict(self) -> dict:
        return {
            "event": self.event,
            "change_type": self.change_type,
            "create_time": self.create_time,
            "fields": dict(self.fields),
        }


def external_contact(change_type: str, create_time: int, userid: str, external_userid: str, **extra) -> Event:
    """``change_external_contact``: add/add_half/edit/del_external_contact, del_follow_user,
    transfer_fail. ``extra`` carries State, WelcomeCode, Source or FailReason when they apply."""
    fields: dict[str, Any] = {"UserID": userid, "ExternalUserID": external_userid}
    fields.update({k: v for k, v in extra.items() if v is not None})
    return Event(EXTERNAL_CONTACT, change_type, create_time, fields)


def contact(change_type: str, create_time: int, userid: str, **extra) -> Event:
    """``change_contact``: create_user, update_user (NewUserID when renamed), delete_user."""
    fields: dict[str, Any] = {"UserID": userid}
    fields.update({k: v for k, v in extra.items() if v is not None})
    return Event(CONTACT, change_type, create_time, fields)


def external_chat(change_type: str, create_time: int, chat_id: str, **extra) -> Event:
    """``change_external_chat``: create, update (UpdateDetail, JoinScene/QuitScene,
    MemChangeCnt, MemChangeList, LastMemVer, CurMemVer), dismiss."""
    fields: dict[str, Any] = {"ChatId": chat_id}
    fields.update({k: v for k, v in extra.items() if v is not None})
    return Event(EXTERNAL_CHAT, change_type, create_time, fields)
