"""The corp directory: departments and users (reps), including renames and resignations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .entities import CHAT_RESIGNED_PENDING, Department, User
from .errors import ApiError, ControlError

if TYPE_CHECKING:
    from .world import World

USER_FIELDS = ("name", "department", "position", "mobile", "gender", "email", "alias")


def add_department(
    world: World, name: str, parentid: int = 1, id: int | None = None, order: int = 0
) -> Department:
    """Create a department under ``parentid``; ids are assigned when not given."""
    if not name:
        raise ControlError(400, "department name required")
    if parentid not in world.departments:
        raise ControlError(404, f"parent department {parentid} not found")
    if id is None:
        id = max(world.departments) + 1
    if id in world.departments:
        raise ControlError(409, f"department {id} exists")
    department = Department(int(id), name, int(parentid), int(order))
    world.departments[department.id] = department
    return department


def subtree(world: World, root: int) -> list[int]:
    """``root`` and every department below it, parents before children."""
    result, frontier = [root], [root]
    while frontier:
        children = sorted(d.id for d in world.departments.values() if d.parentid in frontier)
        result.extend(children)
        frontier = children
    return result


def list_departments(world: World, id: int | None = None) -> list[dict]:
    """department/list: all departments, or ``id`` and its descendants (60123 when unknown)."""
    if id is None:
        ids = sorted(world.departments)
    elif id not in world.departments:
        raise ApiError(60123)
    else:
        ids = subtree(world, id)
    return [world.departments[i].to_api() for i in ids]


def users_in(world: World, department_id: int, fetch_child: bool) -> list[User]:
    """Active users of a department (and of its descendants with ``fetch_child``)."""
    if department_id not in world.departments:
        raise ApiError(60123)
    departments = set(subtree(world, department_id) if fetch_child else [department_id])
    return [u for u in world.users.values() if u.active and departments.intersection(u.department)]


def add_user(
    world: World, userid: str, name: str | None = None, department: list[int] | None = None, **fields
) -> User:
    """Create a rep. Extra fields: position, mobile, gender, email, alias, contact_enabled,
    contact_limit."""
    if not userid:
        raise ControlError(400, "userid required")
    if userid in world.users:
        raise ControlError(409, f"user {userid} exists")
    department = [int(d) for d in (department or [1])]
    missing = [d for d in department if d not in world.departments]
    if missing:
        raise ControlError(404, f"departments not found: {missing}")
    allowed = {"position", "mobile", "gender", "email", "alias", "contact_enabled", "contact_limit"}
    unknown = set(fields) - allowed
    if unknown:
        raise ControlError(400, f"unknown user fields: {', '.join(sorted(unknown))}")
    user = User(
        userid=userid,
        name=name or userid,
        department=department,
        open_userid=world.new_id("wo", 30),
        **fields,
    )
    world.users[userid] = user
    return user


def update_user(world: World, userid: str, changes: dict) -> tuple[User, str | None]:
    """Apply directory changes to a rep; ``new_userid`` renames them everywhere. Returns the
    user and the old userid when renamed."""
    user = world.users.get(userid)
    if user is None or not user.active:
        raise ControlError(404, f"user {userid} not found")
    unknown = set(changes) - set(USER_FIELDS) - {"new_userid", "contact_enabled", "contact_limit"}
    if unknown:
        raise ControlError(400, f"unknown user fields: {', '.join(sorted(unknown))}")
    for key in set(USER_FIELDS) & set(changes):
        value = changes[key]
        if key == "department":
            value = [int(d) for d in value]
            if any(d not in world.departments for d in value):
                raise ControlError(404, "department not found")
        setattr(user, key, value)
    for key in ("contact_enabled", "contact_limit"):
        if key in changes:
            setattr(user, key, changes[key])
    new_userid = changes.get("new_userid")
    if new_userid and new_userid != userid:
        rename_user(world, userid, new_userid)
        return user, userid
    return user, None


def rename_user(world: World, old: str, new: str) -> None:
    """A userid change ripples through every record that names the rep."""
    if new in world.users:
        raise ControlError(409, f"user {new} exists")
    user = world.users.pop(old)
    user.userid = new
    world.users[new] = user
    for follow in world.follows.of_user(old):
        world.follows.remove(old, follow.external_userid)
        follow.userid = new
        world.follows.add(follow)
    for way in world.contact_ways.values():
        way.user = [new if u == old else u for u in way.user]
    for transfer in world.transfers:
        if transfer.handover_userid == old:
            transfer.handover_userid = new
        if transfer.takeover_userid == old:
            transfer.takeover_userid = new
    for chat in world.group_chats.values():
        if chat.owner == old:
            chat.owner = new
        chat.admin_list = [new if a == old else a for a in chat.admin_list]
        for member in chat.members:
            if member.type == 1 and member.userid == old:
                member.userid = new
    for code in world.welcome_codes.values():
        if code.userid == old:
            code.userid = new
    world.chatting = {(new if u == old else u, e) for u, e in world.chatting}


def resign_user(world: World, userid: str) -> User:
    """The rep leaves: out of the directory; customers and chats wait to be reassigned."""
    user = world.users.get(userid)
    if user is None or not user.active:
        raise ControlError(404, f"user {userid} not found or already resigned")
    user.resigned_at = world.now()
    for chat in world.group_chats.values():
        if chat.owner == userid:
            chat.status = CHAT_RESIGNED_PENDING
    return user
