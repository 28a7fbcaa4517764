"""What people do in WeCom and WeChat, and the callbacks WeCom sends about it.

Each action changes the world and queues the callback(s) WeCom would send; it returns an
Outcome with the data for the control API and the deliveries, so a caller can wait for them.
Call with ``world.lock`` held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import contact_ways, directory, events, groupchats, tags, transfers, welcome
from .codes import wechat_user
from .entities import Customer
from .errors import ControlError
from .people import ADD_WAY_QR, add_follow

if TYPE_CHECKING:
    from .callbacks import Delivery
    from .world import World

ADD_WAY_UNKNOWN = 0


@dataclass
class Outcome:
    data: dict[str, Any]
    deliveries: list[Delivery] = field(default_factory=list)


def _emit(world: World, event: events.Event, outcome: Outcome) -> None:
    outcome.deliveries.append(world.emit(event))


def scan(world: World, spec: dict) -> Outcome:
    """A customer scans a contact way (``config_id`` or ``state``) and adds a rep.

    spec: config_id | state; the customer as external_userid | unionid | openid, or
    ``customer`` {name, unionid, openid, gender, phone} for a new one (default: a new random
    WeChat user); ``userid`` to force the rep; ``pick`` "round_robin" | "random";
    ``already_chatted`` (no WelcomeCode); ``add_way`` to override (1 for QR, 0 mini-program).
    """
    if spec.get("config_id"):
        way = world.contact_ways.get(spec["config_id"])
    elif spec.get("state"):
        way = contact_ways.find_by_state(world, spec["state"])
    else:
        raise ControlError(400, "config_id or state required")
    if way is None:
        raise ControlError(404, "contact way not found")
    if way.is_temp and world.now() > way.created_at + (way.expires_in or 0):
        raise ControlError(410, "temporary contact way expired")
    customer = wechat_user(
        world,
        {
            **(spec.get("customer") or {}),
            **{k: spec[k] for k in ("external_userid", "unionid", "openid") if spec.get(k)},
        },
    )
    rep = _pick_rep(world, way, customer, spec)
    way.scans += 1
    add_way = int(spec.get("add_way", ADD_WAY_QR if way.scene == 2 else ADD_WAY_UNKNOWN))
    follow = add_follow(world, rep.userid, customer.external_userid, add_way=add_way, state=way.state)
    already_chatted = bool(spec.get("already_chatted"))
    code = None
    if already_chatted:
        world.chatting.add((rep.userid, customer.external_userid))
    else:
        code = welcome.mint(world, rep.userid, customer.external_userid)
    change_type = "add_external_contact" if way.skip_verify else "add_half_external_contact"
    outcome = Outcome(
        {
            "external_userid": customer.external_userid,
            "unionid": customer.unionid,
            "openid": customer.openid,
            "userid": rep.userid,
            "config_id": way.config_id,
            "state": way.state,
            "welcome_code": code.code if code else None,
            "change_type": change_type,
            "createtime": follow.createtime,
        }
    )
    _emit(
        world,
        events.external_contact(
            change_type,
            follow.createtime,
            rep.userid,
            customer.external_userid,
            State=way.state or None,
            WelcomeCode=code.code if code else None,
        ),
        outcome,
    )
    return outcome


def _pick_rep(world: World, way, customer: Customer, spec: dict):
    candidates = [
        u
        for u in contact_ways.way_users(world, way)
        if world.follows.get(u.userid, customer.external_userid) is None and not world.at_contact_limit(u)
    ]
    if spec.get("userid"):
        chosen = next((u for u in candidates if u.userid == spec["userid"]), None)
        if chosen is None:
            raise ControlError(409, f"{spec['userid']} cannot take this customer through this way")
        return chosen
    if not candidates:
        raise ControlError(409, "no rep of this way can take the customer (resigned, full or already added)")
    if len(candidates) == 1:
        return candidates[0]
    if (spec.get("pick") or world.config.scan_pick) == "random":
        return world.rng.choice(candidates)
    chosen = candidates[way.next_pick % len(candidates)]
    way.next_pick += 1
    return chosen


def customer_deletes_rep(world: World, external_userid: str, userid: str) -> Outcome:
    """The customer deletes the rep: del_follow_user (a lost customer)."""
    if world.follows.remove(userid, external_userid) is None:
        raise ControlError(404, "no such relation")
    outcome = Outcome({"userid": userid, "external_userid": external_userid})
    _emit(
        world, events.external_contact("del_follow_user", world.now_int(), userid, external_userid), outcome
    )
    return outcome


def rep_deletes_customer(world: World, userid: str, external_userid: str) -> Outcome:
    """The rep deletes the customer: del_external_contact."""
    if world.follows.remove(userid, external_userid) is None:
        raise ControlError(404, "no such relation")
    outcome = Outcome({"userid": userid, "external_userid": external_userid})
    _emit(
        world,
        events.external_contact("del_external_contact", world.now_int(), userid, external_userid),
        outcome,
    )
    return outcome


def edit_customer(world: World, userid: str, external_userid: str, changes: dict) -> Outcome:
    """The rep edits the customer in the client (remark, description, mobiles, corp tags):
    edit_external_contact. (The same change through the API fires nothing.)"""
    follow = world.follows.get(userid, external_userid)
    if follow is None:
        raise ControlError(404, "no such relation")
    for key in ("remark", "description", "remark_corp_name"):
        if key in changes:
            setattr(follow, key, str(changes[key]))
    if "remark_mobiles" in changes:
        follow.remark_mobiles = list(changes["remark_mobiles"])
    if changes.get("add_tag") or changes.get("remove_tag"):
        tags.apply(
            world, userid, external_userid, changes.get("add_tag") or [], changes.get("remove_tag") or []
        )
    outcome = Outcome({"follow": follow.to_follow_info()})
    _emit(
        world,
        events.external_contact("edit_external_contact", world.now_int(), userid, external_userid),
        outcome,
    )
    return outcome


def start_chat(world: World, userid: str, external_userid: str) -> Outcome:
    """The two start talking: from now on their welcome code answers 41051. No callback."""
    if world.follows.get(userid, external_userid) is None:
        raise ControlError(404, "no such relation")
    world.chatting.add((userid, external_userid))
    return Outcome({"userid": userid, "external_userid": external_userid, "chatting": True})


def create_user(world: World, spec: dict, notify: bool) -> Outcome:
    """A rep joins; with ``notify`` WeCom tells the app (change_contact/create_user)."""
    spec = dict(spec)
    userid = spec.pop("userid", None)
    user = directory.add_user(world, userid, spec.pop("name", None), spec.pop("department", None), **spec)
    outcome = Outcome({"user": user.to_api()})
    if notify:
        _emit(
            world,
            events.contact(
                "create_user",
                world.now_int(),
                user.userid,
                Name=user.name,
                Department=",".join(str(d) for d in user.department),
                MainDepartment=user.main_department,
                Mobile=user.mobile or None,
                Position=user.position or None,
                Gender=int(user.gender or 0),
                Status=1,
            ),
            outcome,
        )
    return outcome


def update_user(world: World, userid: str, changes: dict) -> Outcome:
    """Directory change: change_contact/update_user (NewUserID when the userid changes)."""
    user, old = directory.update_user(world, userid, changes)
    outcome = Outcome({"user": user.to_api()})
    fields = {
        "Name": changes.get("name"),
        "Position": changes.get("position"),
        "Mobile": changes.get("mobile"),
    }
    if "department" in changes:
        fields["Department"] = ",".join(str(d) for d in user.department)
    if old:
        fields["NewUserID"] = user.userid
    _emit(world, events.contact("update_user", world.now_int(), old or user.userid, **fields), outcome)
    return outcome


def resign(world: World, userid: str) -> Outcome:
    """The rep leaves (change_contact/delete_user): their customers become unassigned."""
    user = directory.resign_user(world, userid)
    outcome = Outcome(
        {
            "userid": user.userid,
            "resigned_at": user.resigned_at,
            "customers": world.follows.count_for_user(user.userid),
        }
    )
    _emit(world, events.contact("delete_user", world.now_int(), user.userid), outcome)
    return outcome


def set_contact_limit(world: World, userid: str, limit: int | None) -> Outcome:
    """How many customers the rep may hold (None: the corp default)."""
    user = world.users.get(userid)
    if user is None:
        raise ControlError(404, f"user {userid} not found")
    user.contact_limit = None if limit is None else int(limit)
    return Outcome(
        {
            "userid": userid,
            "contact_limit": world.contact_limit(user),
            "customers": world.follows.count_for_user(userid),
        }
    )


def refuse_transfer(world: World, external_userid: str, takeover_userid: str | None = None) -> Outcome:
    """The customer refuses a waiting transfer: status 3 and transfer_fail customer_refused."""
    deliveries = transfers.refuse(world, external_userid, takeover_userid)
    return Outcome({"refused": len(deliveries)}, deliveries)


def create_chat(world: World, spec: dict) -> Outcome:
    """A rep creates a customer group: change_external_chat/create."""
    owner = spec.get("owner")
    if not owner:
        raise ControlError(400, "owner required")
    chat = groupchats.create(
        world, owner, spec.get("members") or [], spec.get("name") or "", spec.get("notice") or ""
    )
    outcome = Outcome({"chat_id": chat.chat_id, "group_chat": chat.to_dict()})
    _emit(world, events.external_chat("create", world.now_int(), chat.chat_id), outcome)
    return outcome


def update_chat(world: World, chat_id: str, spec: dict) -> Outcome:
    """A group changes: add_member / del_member (join_scene, quit_scene), change_owner,
    change_name, change_notice → change_external_chat/update with UpdateDetail."""
    chat = world.group_chats.get(chat_id)
    if chat is None:
        raise ControlError(404, "chat not found")
    detail = spec.get("update_detail")
    now = world.now_int()
    last_version = chat.version
    extra: dict[str, Any] = {}
    if detail == "add_member":
        ids = [m for m in spec.get("members") or [] if chat.member(m) is None]
        if not ids:
            raise ControlError(400, "members to add required")
        join_scene = int(spec.get("join_scene", 1))
        for member_id in ids:
            chat.members.append(groupchats.member(world, member_id, chat.owner, now, join_scene))
        extra = {"JoinScene": join_scene, "MemChangeCnt": len(ids), "MemChangeList": ids}
    elif detail == "del_member":
        ids = [m for m in spec.get("members") or [] if chat.member(m) is not None and m != chat.owner]
        if not ids:
            raise ControlError(400, "members to remove required (not the owner)")
        chat.members = [m for m in chat.members if m.userid not in ids]
        extra = {"QuitScene": int(spec.get("quit_scene", 0)), "MemChangeCnt": len(ids), "MemChangeList": ids}
    elif detail == "change_owner":
        new_owner = spec.get("owner")
        if not new_owner or new_owner not in world.users:
            raise ControlError(400, "owner required")
        if chat.member(new_owner) is None:
            chat.members.append(groupchats.member(world, new_owner, chat.owner, now))
        chat.owner = new_owner
    elif detail == "change_name":
        chat.name = str(spec.get("name") or "")
    elif detail == "change_notice":
        chat.notice = str(spec.get("notice") or "")
    else:
        raise ControlError(
            400, "update_detail must be add_member, del_member, change_owner, change_name or change_notice"
        )
    if detail in ("add_member", "del_member"):
        chat.version += 1
        extra.update(LastMemVer=str(last_version), CurMemVer=str(chat.version))
    outcome = Outcome({"group_chat": chat.to_dict()})
    _emit(world, events.external_chat("update", now, chat_id, UpdateDetail=detail, **extra), outcome)
    return outcome


def dismiss_chat(world: World, chat_id: str) -> Outcome:
    """The owner dismisses the group: change_external_chat/dismiss."""
    if world.group_chats.pop(chat_id, None) is None:
        raise ControlError(404, "chat not found")
    outcome = Outcome({"chat_id": chat_id})
    _emit(world, events.external_chat("dismiss", world.now_int(), chat_id), outcome)
    return outcome


def advance_clock(world: World, seconds: float) -> Outcome:
    """Move simulator time forward and apply what fell due (transfers complete or fail)."""
    try:
        now = world.clock.advance(float(seconds))
    except (TypeError, ValueError) as exc:
        raise ControlError(400, str(exc)) from exc
    deliveries = world.settle()
    return Outcome({"now": now, "offset": world.clock.offset}, deliveries)
