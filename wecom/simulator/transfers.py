"""Customer transfers (在职继承 / 离职继承): requests, 24 h acceptance, refusals, results.

A request leaves the customer with the handover rep; after ``transfer_accept_seconds`` (24 h)
on the simulator clock it completes and the relation moves to the taker, unless the customer
refused meanwhile (status 3, ``transfer_fail`` customer_refused) or the taker is at their
contact limit by then (status 4, ``transfer_fail`` customer_limit_exceed).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from . import events
from .entities import (
    TRANSFER_DONE,
    TRANSFER_LIMIT,
    TRANSFER_NO_RECORD,
    TRANSFER_REFUSED,
    TRANSFER_WAITING,
    Transfer,
)
from .errors import ApiError, ControlError, invalid
from .pagination import paginate
from .people import ADD_WAY_ASSIGNED

if TYPE_CHECKING:
    from .callbacks import Delivery
    from .world import World

MAX_CUSTOMERS = 100
MAX_SUCCESS_MSG = 200
PROTECTION_WINDOW = 90 * 86400
MAX_TRANSFERS_IN_WINDOW = 2


def _customer_errcode(world: World, kind: str, handover: str, takeover: str, external_userid: str) -> int:
    if handover == takeover:
        return 40130
    if world.follows.get(handover, external_userid) is None:
        return 40131
    waiting = [
        t for t in world.transfers if t.external_userid == external_userid and t.status == TRANSFER_WAITING
    ]
    if any(t.handover_userid == handover for t in waiting):
        return 40129
    if any(t.takeover_userid == takeover for t in waiting):
        return 40100
    if kind == "onjob":
        since = world.now() - PROTECTION_WINDOW
        done = [
            t
            for t in world.transfers
            if t.external_userid == external_userid
            and t.kind == "onjob"
            and t.status == TRANSFER_DONE
            and (t.finished_at or 0) >= since
        ]
        if len(done) >= MAX_TRANSFERS_IN_WINDOW:
            return 40128
    if world.at_contact_limit(world.users[takeover]):
        return 40099
    return 0


def request(world: World, body: dict, kind: str) -> dict:
    """transfer_customer (kind "onjob") or resigned/transfer_customer (kind "resigned"):
    per-customer errcodes; the accepted ones start waiting."""
    handover_id, takeover_id = body.get("handover_userid"), body.get("takeover_userid")
    external_userids = body.get("external_userid") or []
    if not isinstance(external_userids, list) or not external_userids:
        raise invalid("external_userid list required")
    if len(external_userids) > MAX_CUSTOMERS:
        # Following the project's protocol notes: an oversized batch is refused as a whole.
        raise ApiError(40003, f"invalid param: at most {MAX_CUSTOMERS} external_userid a call")
    message = body.get("transfer_success_msg") or ""
    if kind == "onjob" and len(message) > MAX_SUCCESS_MSG:
        raise invalid(f"transfer_success_msg longer than {MAX_SUCCESS_MSG} characters")
    if kind == "onjob":
        world.require_user(handover_id)
    else:
        handover = world.require_user(handover_id, active=False)
        if handover.active:
            raise ApiError(40097)
    world.require_user(takeover_id)
    now = world.now()
    results = []
    for external_userid in external_userids:
        errcode = _customer_errcode(world, kind, handover_id, takeover_id, external_userid)
        if errcode == 0:
            due = now + world.config.transfer_accept_seconds
            world.next_due = min(world.next_due, due)
            world.transfers.append(
                Transfer(
                    id=next(world.transfer_ids),
                    kind=kind,
                    handover_userid=handover_id,
                    takeover_userid=takeover_id,
                    external_userid=external_userid,
                    requested_at=now,
                    due_at=due,
                    success_msg=message,
                )
            )
        results.append({"external_userid": external_userid, "errcode": errcode})
    return {"customer": results}


def results(world: World, body: dict, kind: str) -> dict:
    """transfer_result / resigned/transfer_result: the latest transfer of each customer between
    the two reps, oldest request first, ``transfer_page_size`` (100) a page."""
    handover, takeover = body.get("handover_userid"), body.get("takeover_userid")
    if not handover or not takeover:
        raise ApiError(41009, "handover_userid and takeover_userid required")
    latest: dict[str, Transfer] = {}
    for transfer in world.transfers:
        if (transfer.kind, transfer.handover_userid, transfer.takeover_userid) == (kind, handover, takeover):
            latest[transfer.external_userid] = transfer
    ordered = sorted(latest.values(), key=lambda t: (t.requested_at, t.id))
    page, next_cursor = paginate(
        ordered, body.get("cursor"), world.config.transfer_page_size, f"transfer_{kind}"
    )
    return {"customer": [t.to_result() for t in page], "next_cursor": next_cursor}


def _fail(world: World, transfer: Transfer, status: int, reason: str) -> Delivery:
    transfer.status = status
    transfer.fail_reason = reason
    transfer.finished_at = world.now()
    # WeCom names the taker whose takeover failed.
    return world.emit(
        events.external_contact(
            "transfer_fail",
            world.now_int(),
            transfer.takeover_userid,
            transfer.external_userid,
            FailReason=reason,
        )
    )


def settle(world: World) -> list[Delivery]:
    """Complete every waiting transfer that is due. Call with ``world.lock`` held."""
    now = world.now()
    deliveries: list[Delivery] = []
    if now < world.next_due:  # nothing can be due yet: skip the scan on every request
        return deliveries
    world.next_due = min(
        (t.due_at for t in world.transfers if t.status == TRANSFER_WAITING and t.due_at > now),
        default=math.inf,
    )
    for transfer in world.transfers:
        if transfer.status != TRANSFER_WAITING or transfer.due_at > now:
            continue
        old = world.follows.get(transfer.handover_userid, transfer.external_userid)
        taker = world.users.get(transfer.takeover_userid)
        if old is None or taker is None or not taker.active:
            # The relation or the taker vanished meanwhile: nothing left to hand over.
            transfer.status = TRANSFER_NO_RECORD
            transfer.finished_at = transfer.due_at
            continue
        if world.at_contact_limit(taker):
            deliveries.append(_fail(world, transfer, TRANSFER_LIMIT, "customer_limit_exceed"))
            continue
        world.follows.remove(transfer.handover_userid, transfer.external_userid)
        if world.follows.get(taker.userid, transfer.external_userid) is None:
            # Remark, tags and channel state go with the customer; WeCom shows them as assigned.
            world.follows.add(
                dataclasses.replace(
                    old,
                    userid=taker.userid,
                    createtime=int(transfer.due_at),
                    add_way=ADD_WAY_ASSIGNED,
                    oper_userid=transfer.handover_userid,
                    remark_mobiles=list(old.remark_mobiles),
                    tag_ids=list(old.tag_ids),
                )
            )
        transfer.status = TRANSFER_DONE
        transfer.finished_at = transfer.due_at
        if transfer.kind == "onjob":
            deliveries.append(
                world.emit(
                    events.external_contact(
                        "del_external_contact",
                        int(transfer.due_at),
                        transfer.handover_userid,
                        transfer.external_userid,
                        Source="DELETE_BY_TRANSFER",
                    )
                )
            )
    return deliveries


def refuse(world: World, external_userid: str, takeover_userid: str | None = None) -> list[Delivery]:
    """The customer refuses their waiting transfer(s): status 3 and a transfer_fail callback."""
    waiting = [
        t
        for t in world.transfers
        if t.external_userid == external_userid
        and t.status == TRANSFER_WAITING
        and (takeover_userid is None or t.takeover_userid == takeover_userid)
    ]
    if not waiting:
        raise ControlError(404, "no waiting transfer for this customer")
    return [_fail(world, t, TRANSFER_REFUSED, "customer_refused") for t in waiting]


def unassigned(world: World, body: dict) -> dict:
    """get_unassigned_list: customers of resigned reps not transferred yet (a waiting or done
    transfer takes them off), by resignation time. ``page_size`` ≤ 1000; cursor or page_id."""
    page_size = int(body.get("page_size") or 1000)
    if not 0 < page_size <= 1000:
        raise invalid("page_size must be 1..1000")
    taken = {
        (t.handover_userid, t.external_userid)
        for t in world.transfers
        if t.status in (TRANSFER_WAITING, TRANSFER_DONE)
    }
    rows = []
    resigned = sorted(
        (u for u in world.users.values() if not u.active), key=lambda u: (u.resigned_at, u.userid)
    )
    for user in resigned:
        for follow in world.follows.of_user(user.userid):
            if (user.userid, follow.external_userid) not in taken:
                rows.append(
                    {
                        "handover_userid": user.userid,
                        "external_userid": follow.external_userid,
                        "dimission_time": int(user.resigned_at or 0),
                    }
                )
    cursor = body.get("cursor")
    if not cursor and body.get("page_id"):
        # Legacy paging: page_id counts pages of page_size.
        start = int(body["page_id"]) * page_size
        page = rows[start : start + page_size]
        return {"info": page, "is_last": start + page_size >= len(rows), "next_cursor": ""}
    page, next_cursor = paginate(rows, cursor, page_size, "unassigned")
    return {"info": page, "is_last": not next_cursor, "next_cursor": next_cursor}
