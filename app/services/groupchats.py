"""Keeping customer group chats equal to WeCom."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import GroupChat, GroupChatStatus
from wecom.client import contact_client

# groupchat/get on a dismissed or unknown chat.
GONE_ERRCODES = frozenset({49008, 40050, 90500})


def _row(corp_id: int, chat_id: str) -> GroupChat:
    row = db.session.scalar(select(GroupChat).where(GroupChat.corp_id == corp_id, GroupChat.chat_id == chat_id))
    if row is None:
        row = GroupChat(corp_id=corp_id, chat_id=chat_id)
        db.session.add(row)
    return row


def refresh(corp_id: int, chat_id: str) -> GroupChat | None:
    try:
        chat = contact_client().external_contact_group_chat.get(chat_id)["group_chat"]
    except WeChatClientException as exc:
        if exc.errcode in GONE_ERRCODES:
            return None
        raise
    row = _row(corp_id, chat_id)
    row.name = chat.get("name") or ""
    row.owner_userid = chat.get("owner") or ""
    row.notice = (chat.get("notice") or "")[:512]
    row.member_count = len(chat.get("member_list") or [])
    row.status = GroupChatStatus.active
    db.session.flush()
    return row


def dismiss(corp_id: int, chat_id: str, at: datetime) -> None:
    row = _row(corp_id, chat_id)
    if row.status != GroupChatStatus.dismissed:
        row.status = GroupChatStatus.dismissed
        row.dismissed_at = at
    db.session.flush()
