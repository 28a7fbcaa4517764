"""The corp tag library (企业客户标签) and tagging customers. API changes fire no callback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .entities import Tag, TagGroup
from .errors import ApiError, invalid

if TYPE_CHECKING:
    from .world import World

MAX_TAGS = 3000
MAX_NAME = 30


def _name(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise ApiError(40072)
    return value


def get_list(world: World, body: dict) -> dict:
    """externalcontact/get_corp_tag_list: every group, or the groups/tags asked for."""
    tag_ids, group_ids = body.get("tag_id") or [], body.get("group_id") or []
    groups = sorted(world.tag_groups.values(), key=lambda g: (-g.order, g.create_time, g.group_id))
    if not tag_ids and not group_ids:
        return {"tag_group": [g.to_api(world.tags) for g in groups]}
    wanted_tags = {t for t in tag_ids if t in world.tags}
    result = []
    for group in groups:
        if group.group_id in group_ids:
            result.append(group.to_api(world.tags))
        elif wanted_tags.intersection(group.tag_ids):
            result.append(group.to_api(world.tags, only=wanted_tags))
    return {"tag_group": result}


def add(world: World, body: dict) -> dict:
    """externalcontact/add_corp_tag: into ``group_id``, or into the group named ``group_name``
    (created when new). Same-name tags in one call collapse to one; existing names are 40071."""
    specs = body.get("tag") or []
    if not isinstance(specs, list) or not specs:
        raise invalid("tag list required: empty groups are not allowed")
    names: list[tuple[str, int]] = []
    for spec in specs:
        name = _name((spec or {}).get("name"))
        if name not in [n for n, _ in names]:
            names.append((name, int(spec.get("order") or 0)))
    if len(world.tags) + len(names) > MAX_TAGS:
        raise invalid(f"at most {MAX_TAGS} corp tags")
    now = world.now_int()
    group = None
    if body.get("group_id"):
        group = world.tag_groups.get(body["group_id"])
        if group is None:
            raise ApiError(40068, "invalid group_id")
    else:
        group_name = _name(body.get("group_name"))
        group = next((g for g in world.tag_groups.values() if g.group_name == group_name), None)
        if group is None:
            group = TagGroup(world.new_id("et", 20), group_name, now, int(body.get("order") or 0))
            world.tag_groups[group.group_id] = group
    existing = {world.tags[t].name for t in group.tag_ids}
    clash = [n for n, _ in names if n in existing]
    if clash:
        raise ApiError(40071, f"tag name already exists: {clash[0]}")
    created = []
    for name, order in names:
        tag = Tag(world.new_id("et", 20), name, group.group_id, now, order)
        world.tags[tag.id] = tag
        group.tag_ids.append(tag.id)
        created.append(tag.id)
    return {"tag_group": group.to_api(world.tags, only=set(created))}


def edit(world: World, body: dict) -> dict:
    """externalcontact/edit_corp_tag: rename or reorder a tag or a group."""
    target = body.get("id")
    if target in world.tags:
        tag = world.tags[target]
        if "name" in body:
            name = _name(body["name"])
            siblings = {world.tags[t].name for t in world.tag_groups[tag.group_id].tag_ids if t != tag.id}
            if name in siblings:
                raise ApiError(40071)
            tag.name = name
        if "order" in body:
            tag.order = int(body["order"])
    elif target in world.tag_groups:
        group = world.tag_groups[target]
        if "name" in body:
            name = _name(body["name"])
            if any(g.group_name == name and g is not group for g in world.tag_groups.values()):
                raise ApiError(40071)
            group.group_name = name
        if "order" in body:
            group.order = int(body["order"])
    else:
        raise ApiError(40068)
    return {}


def delete(world: World, body: dict) -> dict:
    """externalcontact/del_corp_tag: tags and/or whole groups; a group left empty goes too.
    Deleted tags disappear from every customer."""
    tag_ids, group_ids = body.get("tag_id") or [], body.get("group_id") or []
    if not tag_ids and not group_ids:
        raise invalid("tag_id or group_id required")
    unknown = [t for t in tag_ids if t not in world.tags] + [
        g for g in group_ids if g not in world.tag_groups
    ]
    if unknown:
        raise ApiError(40068, f"invalid tagid: {unknown[0]}")
    doomed = set(tag_ids)
    for group_id in group_ids:
        doomed.update(world.tag_groups[group_id].tag_ids)
    for tag_id in doomed:
        tag = world.tags.pop(tag_id)
        group = world.tag_groups.get(tag.group_id)
        if group:
            group.tag_ids.remove(tag_id)
            if not group.tag_ids:
                del world.tag_groups[group.group_id]
    for follow in world.follows.all():
        if doomed.intersection(follow.tag_ids):
            follow.tag_ids = [t for t in follow.tag_ids if t not in doomed]
    return {}


def apply(world: World, userid: str, external_userid: str, add_tags: list, remove_tags: list) -> None:
    """Add/remove corp tags on one relation (84061 without a relation, 40068 unknown tag)."""
    follow = world.follows.get(userid, external_userid)
    if follow is None:
        raise ApiError(84061)
    unknown = [t for t in list(add_tags) + list(remove_tags) if t not in world.tags]
    if unknown:
        raise ApiError(40068, f"invalid tagid: {unknown[0]}")
    for tag_id in add_tags:
        if tag_id not in follow.tag_ids:
            follow.tag_ids.append(tag_id)
    follow.tag_ids = [t for t in follow.tag_ids if t not in set(remove_tags)]


def mark(world: World, body: dict) -> dict:
    """externalcontact/mark_tag."""
    add_tags, remove_tags = body.get("add_tag") or [], body.get("remove_tag") or []
    if not add_tags and not remove_tags:
        raise invalid("add_tag and remove_tag cannot both be empty")
    world.require_user(body.get("userid"), active=False)
    if not body.get("external_userid") or body["external_userid"] not in world.customers:
        raise ApiError(40096)
    apply(world, body["userid"], body["external_userid"], add_tags, remove_tags)
    return {}
