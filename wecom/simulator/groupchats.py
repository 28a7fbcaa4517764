"""Customer group chats (客户群): listing, details and handing chats to a new owner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .entities import (
    CHAT_NORMAL,
    CHAT_RESIGNED_DONE,
    CHAT_RESIGNED_PENDING,
    ChatMember,
    GroupChat,
)
from .errors import ERRMSG, ApiError, ControlError, invalid
from .pagination import paginate

if TYPE_CHECKING:
    from .world import World

MAX_CHATS_A_CALL = 100
BEIJING = 8 * 3600  # WeCom's days start at midnight Beijing time


def sim_day(world: World) -> int:
    return int((world.now() + BEIJING) // 86400)


def list_chats(world: World, body: dict) -> dict:
    """externalcontact/groupchat/list: status_filter 0 all | 1 resigned pending | 2 in progress |
    3 inherited; owner_filter.userid_list; limit 1..1000 (required); cursor."""
    limit = body.get("limit")
    if not isinstance(limit, int) or not 0 < limit <= 1000:
        raise invalid("limit must be 1..1000")
    status_filter = int(body.get("status_filter") or 0)
    owners = set(((body.get("owner_filter") or {}).get("userid_list")) or [])
    chats = sorted(world.group_chats.values(), key=lambda c: (c.create_time, c.chat_id))
    if status_filter:
        chats = [c for c in chats if c.status == status_filter]
    if owners:
        chats = [c for c in chats if c.owner in owners]
    page, next_cursor = paginate(chats, body.get("cursor"), limit, "groupchat")
    return {
        "group_chat_list": [{"chat_id": c.chat_id, "status": c.status} for c in page],
        "next_cursor": next_cursor,
    }


def require_chat(world: World, chat_id: str | None) -> GroupChat:
    chat = world.group_chats.get(chat_id or "")
    if chat is None:
        raise ApiError(40050)
    return chat


def get(world: World, body: dict) -> dict:
    """externalcontact/groupchat/get."""
    chat = require_chat(world, body.get("chat_id"))
    return {"group_chat": chat.to_api(need_name=bool(body.get("need_name")))}


def transfer(world: World, body: dict, resigned: bool) -> dict:
    """groupchat/transfer (owners who resigned) and groupchat/onjob_transfer (owners on the job):
    1..100 chats to ``new_owner``, at most ``groupchat_transfer_daily_limit`` (300) a simulator day
    per original owner. Failures come back per chat in failed_chat_list."""
    chat_ids = body.get("chat_id_list") or []
    if not isinstance(chat_ids, list) or not 0 < len(chat_ids) <= MAX_CHATS_A_CALL:
        raise invalid(f"chat_id_list must hold 1..{MAX_CHATS_A_CALL} chats")
    new_owner = world.require_user(body.get("new_owner"))
    day = sim_day(world)
    failed = []
    for chat_id in chat_ids:
        errcode = _chat_errcode(world, chat_id, new_owner.userid, resigned, day)
        if errcode:
            failed.append({"chat_id": chat_id, "errcode": errcode, "errmsg": _errmsg(errcode)})
            continue
        chat = world.group_chats[chat_id]
        world.chat_transfers.append(
            {
                "chat_id": chat_id,
                "from": chat.owner,
                "to": new_owner.userid,
                "day": day,
                "at": world.now(),
                "resigned": resigned,
            }
        )
        chat.owner = new_owner.userid
        chat.status = CHAT_RESIGNED_DONE if resigned else CHAT_NORMAL
        if chat.member(new_owner.userid) is None:
            chat.members.append(ChatMember(new_owner.userid, 1, world.now_int(), name=new_owner.name))
            chat.version += 1
    return {"failed_chat_list": failed}


def _errmsg(errcode: int) -> str:
    if errcode == 45009:
        return "daily limit: an owner's chats can be transferred at most 300 a day"
    return ERRMSG.get(errcode, "error")


def _chat_errcode(world: World, chat_id: str, new_owner: str, resigned: bool, day: int) -> int:
    chat = world.group_chats.get(chat_id)
    if chat is None:
        return 90501
    owner = world.users.get(chat.owner)
    owner_resigned = owner is None or not owner.active
    if resigned and not owner_resigned:
        return 90500
    if not resigned and owner_resigned:
        return 90502
    if chat.owner == new_owner:
        return 90504
    moved_today = sum(1 for t in world.chat_transfers if t["from"] == chat.owner and t["day"] == day)
    if moved_today >= world.config.groupchat_transfer_daily_limit:
        return 45009
    return 0


def create(world: World, owner: str, members: list[str], name: str = "", notice: str = "") -> GroupChat:
    """A rep creates a customer group: members are userids or external_userids."""
    owner_user = world.users.get(owner)
    if owner_user is None or not owner_user.active:
        raise ControlError(404, f"owner {owner} not found")
    now = world.now_int()
    chat = GroupChat(
        world.new_id("wr", 30, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"),
        name or f"{owner_user.name}的客户群",
        owner,
        now,
        notice,
    )
    chat.members.append(ChatMember(owner, 1, now, name=owner_user.name))
    for member_id in members:
        if member_id != owner:
            chat.members.append(member(world, member_id, owner, now))
    world.group_chats[chat.chat_id] = chat
    if not owner_user.active:
        chat.status = CHAT_RESIGNED_PENDING
    return chat


def member(world: World, member_id: str, invitor: str, join_time: int, join_scene: int = 1) -> ChatMember:
    """A chat member record for a rep or a customer (404 when neither)."""
    user = world.users.get(member_id)
    if user is not None:
        return ChatMember(member_id, 1, join_time, join_scene, invitor, name=user.name)
    customer = world.customers.get(member_id)
    if customer is not None:
        return ChatMember(member_id, 2, join_time, join_scene, invitor, customer.unionid, customer.name)
    raise ControlError(404, f"no user or customer {member_id}")
