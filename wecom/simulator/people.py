"""Customers (WeChat users) and their follow relations with reps; unionid → external_userid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .entities import Customer, Follow
from .errors import ApiError, ControlError, invalid

if TYPE_CHECKING:
    from .world import World

ADD_WAY_QR = 1
ADD_WAY_ASSIGNED = 202  # 管理员/负责人分配: how transferred customers show up for the taker

_GIVEN = ("张", "王", "李", "赵", "陈", "刘", "杨", "黄")
_NAMES = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "杰")


def create_customer(
    world: World,
    name: str | None = None,
    unionid: str | None = None,
    openid: str | None = None,
    external_userid: str | None = None,
    gender: int = 0,
    phone: str = "",
    avatar: str = "",
    type: int = 1,
    corp_name: str = "",
) -> Customer:
    """A new WeChat user. Ids are minted when not given; unionid and openid must be unique."""
    if unionid and unionid in world.by_unionid:
        raise ControlError(409, f"unionid {unionid} exists")
    if openid and openid in world.by_openid:
        raise ControlError(409, f"openid {openid} exists")
    if external_userid and external_userid in world.customers:
        raise ControlError(409, f"external_userid {external_userid} exists")
    customer = Customer(
        external_userid=external_userid or world.new_id("wm", 30),
        name=name or world.rng.choice(_GIVEN) + world.rng.choice(_NAMES),
        unionid=unionid or world.new_id("o", 27),
        openid=openid or world.new_id("o", 27),
        gender=int(gender),
        avatar=avatar or "https://wx.qlogo.cn/mmhead/sim/0",
        phone=phone or _mobile(world),
        type=int(type),
        corp_name=corp_name,
        created_at=world.now(),
    )
    world.customers[customer.external_userid] = customer
    world.by_unionid[customer.unionid] = customer.external_userid
    world.by_openid[customer.openid] = customer.external_userid
    return customer


def _mobile(world: World) -> str:
    """A plausible mainland mobile number: 1, a carrier digit, nine more."""
    return "1" + world.rng.choice("3456789") + "".join(world.rng.choice("0123456789") for _ in range(9))


def find_customer(
    world: World, external_userid: str | None = None, unionid: str | None = None, openid: str | None = None
) -> Customer | None:
    """Look a WeChat user up by any of their ids."""
    if external_userid:
        return world.customers.get(external_userid)
    if unionid:
        return world.customers.get(world.by_unionid.get(unionid, ""))
    if openid:
        return world.customers.get(world.by_openid.get(openid, ""))
    return None


def add_follow(
    world: World,
    userid: str,
    external_userid: str,
    add_way: int = ADD_WAY_QR,
    state: str = "",
    oper_userid: str = "",
    createtime: int | None = None,
) -> Follow:
    """Create (or replace) the relation between a rep and a customer."""
    follow = Follow(
        userid=userid,
        external_userid=external_userid,
        createtime=world.now_int() if createtime is None else createtime,
        add_way=add_way,
        state=state,
        oper_userid=oper_userid or external_userid,
    )
    world.follows.add(follow)
    return follow


def follow_tags(world: World, follow: Follow) -> list[dict]:
    """The relation's corp tags as externalcontact/get shows them."""
    result = []
    for tag_id in follow.tag_ids:
        tag = world.tags.get(tag_id)
        if tag is None:
            continue
        group = world.tag_groups[tag.group_id]
        result.append({"group_name": group.group_name, "tag_name": tag.name, "tag_id": tag.id, "type": 1})
    return result


def require_customer(world: World, external_userid: str | None) -> Customer:
    """40096 when the id is missing or unknown."""
    customer = world.customers.get(external_userid or "")
    if customer is None:
        raise ApiError(40096)
    return customer


def unionid_to_external_userid(world: World, unionid: str, openid: str, subject_type: int = 0) -> dict:
    """idconvert/unionid_to_external_userid: the external_userid when the WeChat user is already
    a customer of the corp, else a pending_id (stable for that unionid) to match later."""
    if not unionid or not openid:
        raise invalid("unionid and openid are required")
    if subject_type not in (0, 1):
        raise invalid("subject_type")
    customer = find_customer(world, unionid=unionid)
    if customer is None or customer.openid != openid:
        raise invalid("unionid and openid do not belong to one user of the mini-program")
    if world.follows.of_customer(customer.external_userid):
        return {"external_userid": customer.external_userid}
    pending = world.pending_ids.setdefault(unionid, world.new_id("p", 31))
    return {"pending_id": pending}
