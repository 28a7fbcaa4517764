"""The periodic catch-up: WeCom's get_unassigned_list names every customer of a resigned rep
not handed over yet. Customers no hand-over of ours has ever covered — the delete_user callback
was missed, or the customer was never mirrored — get a resigned hand-over by the corp's policy.
Customers we already handled (refused, cancelled, ...) are left for an admin to decide.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import (
    FollowRelation,
    FollowStatus,
    HandoverItem,
    HandoverTrigger,
    IdentityType,
    StaffStatus,
)
from app.services import contacts, oneid
from app.services import staff as staff_service
from app.services.contacts import from_timestamp
from app.services.handover import lifecycle
from wecom.client import contact_client

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """What a reconciliation read and started."""

    pages: int = 0
    unassigned: int = 0
    reps_found_resigned: list[str] = field(default_factory=list)
    handovers: list[int] = field(default_factory=list)
    customers_planned: int = 0


def unassigned(corp_id: int) -> tuple[dict[str, list[str]], dict[str, int], int]:
    """Every page of get_unassigned_list: ({handover userid: [external_userid]}, dimission times, pages)."""
    api = contact_client().transfer
    page_size = int(current_app.config["HANDOVER_UNASSIGNED_PAGE_SIZE"])
    by_rep: dict[str, list[str]] = {}
    dimission: dict[str, int] = {}
    cursor, pages = "", 0
    while True:
        page = api.get_unassigned_list(cursor=cursor, page_size=page_size)
        pages += 1
        for row in page.get("info") or []:
            by_rep.setdefault(row["handover_userid"], []).append(row["external_userid"])
            dimission[row["handover_userid"]] = int(row.get("dimission_time") or 0)
        cursor = page.get("next_cursor") or ""
        if page.get("is_last") or not cursor:
            return by_rep, dimission, pages


def reconcile(corp_id: int) -> ReconcileReport:
    """Pick up the customers of resigned reps that no hand-over covers. Commits per rep."""
    by_rep, dimission, pages = unassigned(corp_id)
    report = ReconcileReport(pages=pages, unassigned=sum(len(v) for v in by_rep.values()))
    for userid, external_userids in by_rep.items():
        staff = staff_service.ensure(corp_id, userid)
        if staff.status != StaffStatus.resigned:
            staff_service.mark_resigned(corp_id, userid, from_timestamp(dimission.get(userid)))
            lifecycle.notify_departed(corp_id, staff.id)
            report.reps_found_resigned.append(userid)
        covered = set(
            db.session.scalars(
                select(HandoverItem.external_userid).where(
                    HandoverItem.corp_id == corp_id, HandoverItem.from_staff_id == staff.id
                )
            )
        )
        customer_ids = []
        for external_userid in dict.fromkeys(external_userids):
            if external_userid in covered:
                continue
            customer_id = oneid.customer_id_for(corp_id, IdentityType.external_userid, external_userid)
            if customer_id is None or not _follows(corp_id, staff.id, customer_id):
                # Not (or no longer) mirrored as this rep's customer: read it from WeCom first.
                customer = contacts.refresh(corp_id, external_userid, source="handover_reconcile")
                customer_id = customer.id if customer is not None else None
            if customer_id is not None:
                customer_ids.append(customer_id)
        handover = None
        if customer_ids:
            # The rep's group chats too, unless an earlier hand-over of theirs already took care of them.
            first = lifecycle.latest_of(corp_id, staff.id) is None
            handover = lifecycle.start_resigned(
                corp_id, staff, HandoverTrigger.reconcile, customer_ids=customer_ids, group_chats=first
            )
        if handover is not None:
            count = db.session.query(HandoverItem).filter_by(handover_id=handover.id).count()
            report.handovers.append(handover.id)
            report.customers_planned += count
        db.session.commit()
    log.info("hand-over reconciliation: %s", report)
    return report


def _follows(corp_id: int, staff_id: int, customer_id: int) -> bool:
    return (
        db.session.scalar(
            select(FollowRelation.id).where(
                FollowRelation.corp_id == corp_id,
                FollowRelation.staff_id == staff_id,
                FollowRelation.customer_id == customer_id,
                FollowRelation.status == FollowStatus.active,
            )
        )
        is not None
    )


def reconcile_job() -> dict:
    """Periodic entry point: reconcile the env corp."""
    from app.services import corps

    return asdict(reconcile(corps.env_corp_id()))
