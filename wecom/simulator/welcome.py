"""Welcome codes: minted when a customer adds a rep, valid 20 s, usable once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .entities import WelcomeCode
from .errors import ApiError, invalid

if TYPE_CHECKING:
    from .world import World

MAX_CONTENT_BYTES = 4000
MAX_ATTACHMENTS = 9
ATTACHMENT_FIELDS = {
    "image": ("media_id", "pic_url"),  # either one
    "link": ("title", "url"),
    "miniprogram": ("title", "pic_media_id", "appid", "page"),
    "video": ("media_id",),
    "file": ("media_id",),
}


def mint(world: World, userid: str, external_userid: str) -> WelcomeCode:
    """A fresh code for the new relation."""
    code = WelcomeCode(
        code=world.new_secret(43),
        userid=userid,
        external_userid=external_userid,
        issued_real=world.clock.real(),
        issued_sim=world.now(),
    )
    world.welcome_codes[code.code] = code
    return code


def _age(world: World, code: WelcomeCode) -> float:
    if world.config.welcome_code_clock == "sim":
        return world.now() - code.issued_sim
    return world.clock.real() - code.issued_real


def _check_attachments(attachments) -> None:
    if not isinstance(attachments, list):
        raise invalid("attachments must be a list")
    if len(attachments) > MAX_ATTACHMENTS:
        raise invalid(f"at most {MAX_ATTACHMENTS} attachments")
    for attachment in attachments:
        msgtype = (attachment or {}).get("msgtype")
        if msgtype not in ATTACHMENT_FIELDS:
            raise ApiError(40008, f"invalid attachment msgtype: {msgtype}")
        content = attachment.get(msgtype) or {}
        needed = ATTACHMENT_FIELDS[msgtype]
        ok = (
            any(content.get(f) for f in needed) if msgtype == "image" else all(content.get(f) for f in needed)
        )
        if not ok:
            raise invalid(f"{msgtype} attachment needs {', '.join(needed)}")


def send(world: World, body: dict) -> dict:
    """externalcontact/send_welcome_msg: 41049 without a code; 41050 unknown, expired or used;
    41051 when the two have started chatting. A refused call does not use the code up."""
    code_value = body.get("welcome_code")
    if not code_value:
        raise ApiError(41049)
    text = body.get("text") or {}
    attachments = body.get("attachments") or []
    content = text.get("content") or ""
    if not content and not attachments:
        raise invalid("text and attachments cannot both be empty")
    if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
        raise ApiError(45002, f"text.content longer than {MAX_CONTENT_BYTES} bytes")
    _check_attachments(attachments)
    code = world.welcome_codes.get(code_value)
    if code is None or code.used_at is not None or _age(world, code) > world.config.welcome_code_ttl:
        raise ApiError(41050)
    if (code.userid, code.external_userid) in world.chatting:
        raise ApiError(41051)
    code.used_at = world.now()
    world.welcomes.append(
        {
            "welcome_code": code.code,
            "userid": code.userid,
            "external_userid": code.external_userid,
            "text": content,
            "attachments": attachments,
            "sent_at": code.used_at,
            "seconds_after_add": round(_age(world, code), 3),
        }
    )
    return {}
