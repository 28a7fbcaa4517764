"""department/list, user/list, user/simplelist, user/get (readable with either token)."""

from __future__ import annotations

from .. import directory
from ..errors import ApiError
from .common import Api, Call, int_arg


def _departments(call: Call) -> dict:
    return {"department": directory.list_departments(call.world, int_arg(call, "id"))}


def _users(call: Call, simple: bool) -> dict:
    department_id = int_arg(call, "department_id")
    if department_id is None:
        raise ApiError(60123, "department_id required")
    users = directory.users_in(call.world, department_id, bool(int_arg(call, "fetch_child", 0)))
    return {"userlist": [u.to_simple() if simple else u.to_api() for u in users]}


def _user(call: Call) -> dict:
    return call.world.require_user(call.arg("userid")).to_api()


APIS = [
    Api("department/list", "GET", "any", _departments),
    Api("user/list", "GET", "any", lambda call: _users(call, simple=False)),
    Api("user/simplelist", "GET", "any", lambda call: _users(call, simple=True)),
    Api("user/get", "GET", "any", _user),
]
