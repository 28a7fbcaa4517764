"""A small demo world: a department tree, five reps, a few customers, a tag group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import directory, tags
from .people import ADD_WAY_QR, add_follow, create_customer

if TYPE_CHECKING:
    from .world import World

DEPARTMENTS = [  # id, name, parent
    (2, "销售部", 1),
    (3, "华东销售", 2),
    (4, "华南销售", 2),
    (5, "客户服务部", 1),
]
REPS = [  # userid, name, department, position, mobile
    ("zhangwei", "张伟", 3, "销售经理", "13800000001"),
    ("lina", "李娜", 3, "销售顾问", "13800000002"),
    ("wangfang", "王芳", 4, "销售顾问", "13800000003"),
    ("liuyang", "刘洋", 4, "销售顾问", "13800000004"),
    ("chenjing", "陈静", 5, "客服专员", "13800000005"),
]
CUSTOMERS = [  # name, unionid, follower, remark
    ("王先生", "oDemoUnionWang000000000000001", "zhangwei", "展会客户"),
    ("赵女士", "oDemoUnionZhao000000000000002", "lina", ""),
    ("孙先生", "oDemoUnionSun0000000000000003", "wangfang", "老客户"),
    ("周女士", "oDemoUnionZhou000000000000004", None, ""),  # a WeChat user, not yet a customer
]


def seed_demo(world: World) -> dict:
    """Fill an empty world with the demo corp; returns what was created. Call with the lock held."""
    for department_id, name, parent in DEPARTMENTS:
        if department_id not in world.departments:
            directory.add_department(world, name, parent, department_id)
    for userid, name, department, position, mobile in REPS:
        if userid not in world.users:
            directory.add_user(world, userid, name, [department], position=position, mobile=mobile)
    source_tags = [{"name": "展会"}, {"name": "官网"}, {"name": "转介绍"}]
    group = tags.add(world, {"group_name": "客户来源", "tag": source_tags})
    expo_tag = group["tag_group"]["tag"][0]["id"]
    customers = []
    for name, unionid, follower, remark in CUSTOMERS:
        customer = create_customer(world, name=name, unionid=unionid)
        customers.append(customer.external_userid)
        if follower:
            follow = add_follow(world, follower, customer.external_userid, add_way=ADD_WAY_QR, state="demo")
            follow.remark = remark
            follow.tag_ids.append(expo_tag)
    return {
        "departments": [d for d, _, _ in DEPARTMENTS],
        "users": [r[0] for r in REPS],
        "customers": customers,
        "tag_group": group["tag_group"]["group_id"],
    }
