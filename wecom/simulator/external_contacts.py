"""Reading customers: externalcontact/get, list, get_follow_user_list, batch/get_by_user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ApiError, invalid
from .pagination import paginate
from .people import follow_tags, require_customer

if TYPE_CHECKING:
    from .world import World

FOLLOWERS_PAGE = 500


def get(world: World, external_userid: str | None, cursor: str | None = None) -> dict:
    """The customer and the reps who follow them; 84061 when no rep does, 40096 when unknown.
    Past 500 followers the rest come with ``next_cursor``."""
    customer = require_customer(world, external_userid)
    follows = world.follows.of_customer(customer.external_userid)
    if not follows:
        raise ApiError(84061)
    page, next_cursor = paginate(follows, cursor, FOLLOWERS_PAGE, "follow_user")
    result = {
        "external_contact": customer.to_api(),
        "follow_user": [f.to_follow_user(follow_tags(world, f)) for f in page],
    }
    if next_cursor:
        result["next_cursor"] = next_cursor
    return result


def list_for_user(world: World, userid: str | None) -> dict:
    """externalcontact/list: the rep's customers. WeCom answers 84061 when the rep has none."""
    world.require_user(userid, active=False)
    follows = world.follows.of_user(userid)
    if not follows:
        raise ApiError(84061)
    return {"external_userid": [f.external_userid for f in follows]}


def follow_user_list(world: World) -> dict:
    """externalcontact/get_follow_user_list: active reps configured for customer contact."""
    return {"follow_user": sorted(u.userid for u in world.users.values() if u.active and u.contact_enabled)}


def batch_get_by_user(world: World, body: dict) -> dict:
    """externalcontact/batch/get_by_user: customers of up to 100 reps, ``limit`` ≤ 100 (default
    50; more is capped, as WeCom does), real cursors. Accepts wechatpy's single ``userid`` too."""
    userids = body.get("userid_list")
    if userids is None and body.get("userid"):
        userids = [body["userid"]]
    if not userids or not isinstance(userids, list):
        raise invalid("userid_list required")
    if len(userids) > 100:
        raise invalid("at most 100 userids")
    for userid in userids:
        world.require_user(userid, active=False)
    limit = min(int(body.get("limit") or 50), 100)
    if limit <= 0:
        raise invalid("limit must be positive")
    follows = [f for userid in sorted(set(userids)) for f in world.follows.of_user(userid)]
    page, next_cursor = paginate(follows, body.get("cursor"), limit, "batch_get_by_user")
    return {
        "external_contact_list": [
            {
                "external_contact": world.customers[f.external_userid].to_api(),
                "follow_info": f.to_follow_info(),
            }
            for f in page
        ],
        "next_cursor": next_cursor,
        "fail_info": {"unlicensed_userid_list": []},
    }
