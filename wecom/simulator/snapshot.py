"""The control API's view of the whole world (``GET /sim/state``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import messaging, tokens

if TYPE_CHECKING:
    from .world import World

MESSAGE_LOG_LIMIT = 500


def _sections(world: World) -> dict[str, Callable[[], object]]:
    return {
        "clock": lambda: {
            "now": world.now(),
            "real": world.clock.real(),
            "time_scale": world.clock.time_scale,
            "offset": world.clock.offset,
        },
        "config": world.config.public,
        "counts": lambda: {
            "departments": len(world.departments),
            "users": sum(1 for u in world.users.values() if u.active),
            "resigned_users": sum(1 for u in world.users.values() if not u.active),
            "customers": len(world.customers),
            "follows": len(world.follows),
            "contact_ways": len(world.contact_ways),
            "corp_tags": len(world.tags),
            "group_chats": len(world.group_chats),
            "transfers": len(world.transfers),
            "welcomes": len(world.welcomes),
            "messages": len(world.messages),
        },
        "api_calls": world.counters.to_dict,
        "departments": lambda: [d.to_api() for d in world.departments.values()],
        "users": lambda: [
            {
                **u.to_api(),
                "resigned_at": u.resigned_at,
                "contact_limit": world.contact_limit(u),
                "customers": world.follows.count_for_user(u.userid),
            }
            for u in world.users.values()
        ],
        "customers": lambda: [c.to_dict() for c in world.customers.values()],
        "follows": lambda: [
            f.to_follow_info() | {"external_userid": f.external_userid} for f in world.follows.all()
        ],
        "contact_ways": lambda: [w.to_dict() for w in world.contact_ways.values()],
        "welcome_codes": lambda: [c.to_dict() for c in world.welcome_codes.values()],
        "welcomes": lambda: list(world.welcomes),
        "transfers": lambda: [t.to_dict() for t in world.transfers],
        "group_chats": lambda: [c.to_dict() for c in world.group_chats.values()],
        "chat_transfers": lambda: list(world.chat_transfers),
        "messages": lambda: {
            **messaging.summary(world),
            "log": [m.to_dict() for m in world.messages[-MESSAGE_LOG_LIMIT:]],
        },
        "tokens": lambda: tokens.summary(world),
        "callbacks": world.callbacks.records,
        "callback_queue": world.callbacks.status,
        "faults": world.faults.to_dict,
        "concurrency": lambda: {"in_flight": world.concurrency.in_flight, "peak": world.concurrency.peak},
    }


def build(world: World, only: list[str] | None = None) -> dict:
    """The state, or just the ``only`` sections. Call with ``world.lock`` held."""
    sections = _sections(world)
    names = only or list(sections)
    unknown = [n for n in names if n not in sections]
    if unknown:
        raise KeyError(unknown[0])
    return {name: sections[name]() for name in names}
