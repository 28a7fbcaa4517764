"""The unified per-customer timeline: one list, newest first, of everything that happened to a
customer, built from a registry of sources so each feature adds its own.

A source is a function ``(corp_id, customer_ids) -> Select`` whose columns are labelled exactly
:data:`COLUMNS`; the timeline is the ``UNION ALL`` of every source, sorted and paginated in
SQL. ``customer_ids`` is the customer and everyone merged into it (facts moved by a merge, and
rows that could not move, both show). Register a source from your service module::

    @timeline.source("card_visit")
    def _card_visits(corp_id, customer_ids):
        return select(
            CardVisit.started_at.label("at"), literal("card_visit").label("kind"), ...
        ).where(CardVisit.customer_id.in_(customer_ids))

Reps see their own rows only: an entry with a ``staff_id`` that is not theirs is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, Select, String, and_, cast, func, literal, null, or_, select, union_all

from app.errors import NotFound
from app.extensions import db
from app.models import AuditLog, Customer, FollowRelation, MergeRecord, Staff
from app.schemas.common import Page
from app.services import merge as merge_service
from app.services.auth import Principal
from app.services.customers import resolve_id, visible

# at: when; kind: what (channel_add, merged, an audit action...); customer_id: which of the
# merged customers it happened to; staff_id: the rep it concerns (None: everyone's);
# ref_type/ref_id: the row behind it; detail: a short text; actor: who did it, when known.
COLUMNS = ("at", "kind", "customer_id", "staff_id", "ref_type", "ref_id", "detail", "actor")
SourceQuery = Callable[[int, list[int]], Select]
SOURCES: dict[str, SourceQuery] = {}
# Audit actions a dedicated source already shows (so they do not appear twice).
COVERED_AUDIT_ACTIONS: set[str] = {"customer.merge", "customer.unmerge"}


def source(name: str) -> Callable[[SourceQuery], SourceQuery]:
    """Register a timeline source under ``name`` (re-registering replaces it)."""

    def decorator(fn: SourceQuery) -> SourceQuery:
        SOURCES[name] = fn
        return fn

    return decorator


def _int_null():
    return cast(null(), Integer)


def _str_null():
    return cast(null(), String)


@source("follow")
def _follows(corp_id: int, customer_ids: list[int]) -> Select:
    """A rep added the customer (through a channel code when ``state`` is set)."""
    return select(
        FollowRelation.added_at.label("at"),
        literal("channel_add", String).label("kind"),
        FollowRelation.customer_id.label("customer_id"),
        FollowRelation.staff_id.label("staff_id"),
        literal("follow_relation", String).label("ref_type"),
        FollowRelation.id.label("ref_id"),
        cast(FollowRelation.state, String).label("detail"),
        _str_null().label("actor"),
    ).where(FollowRelation.corp_id == corp_id, FollowRelation.customer_id.in_(customer_ids))


@source("follow_ended")
def _follows_ended(corp_id: int, customer_ids: list[int]) -> Select:
    """The relation ended: the rep or the customer deleted the other, or a transfer moved it."""
    return select(
        FollowRelation.deleted_at.label("at"),
        literal("follow_ended", String).label("kind"),
        FollowRelation.customer_id.label("customer_id"),
        FollowRelation.staff_id.label("staff_id"),
        literal("follow_relation", String).label("ref_type"),
        FollowRelation.id.label("ref_id"),
        cast(FollowRelation.deleted_by, String).label("detail"),
        _str_null().label("actor"),
    ).where(
        FollowRelation.corp_id == corp_id,
        FollowRelation.customer_id.in_(customer_ids),
        FollowRelation.deleted_at.isnot(None),
    )


def _merge_rows(kind: str, at, actor, detail, corp_id: int, customer_ids: list[int]) -> Select:
    return select(
        at.label("at"),
        literal(kind, String).label("kind"),
        MergeRecord.absorbed_id.label("customer_id"),
        _int_null().label("staff_id"),
        literal("merge_record", String).label("ref_type"),
        MergeRecord.id.label("ref_id"),
        cast(detail, String).label("detail"),
        cast(actor, String).label("actor"),
    ).where(
        MergeRecord.corp_id == corp_id,
        or_(MergeRecord.survivor_id.in_(customer_ids), MergeRecord.absorbed_id.in_(customer_ids)),
        at.isnot(None),
    )


@source("merged")
def _merges(corp_id: int, customer_ids: list[int]) -> Select:
    """Another customer record was merged into this one (customer_id = the absorbed one)."""
    return _merge_rows("merged", MergeRecord.created_at, MergeRecord.actor, MergeRecord.reason, corp_id, customer_ids)


@source("unmerged")
def _unmerges(corp_id: int, customer_ids: list[int]) -> Select:
    """A merge was undone."""
    return _merge_rows(
        "unmerged", MergeRecord.undone_at, MergeRecord.undone_by, MergeRecord.undo_reason, corp_id, customer_ids
    )


@source("audit")
def _audit(corp_id: int, customer_ids: list[int]) -> Select:
    """Whatever the audit log holds about the customer (the action is the kind)."""
    return select(
        AuditLog.created_at.label("at"),
        cast(AuditLog.action, String).label("kind"),
        cast(AuditLog.target_id, Integer).label("customer_id"),
        _int_null().label("staff_id"),
        literal("audit_log", String).label("ref_type"),
        AuditLog.id.label("ref_id"),
        cast(AuditLog.reason, String).label("detail"),
        cast(AuditLog.actor, String).label("actor"),
    ).where(
        AuditLog.corp_id == corp_id,
        AuditLog.target_type == "customer",
        AuditLog.target_id.in_([str(i) for i in customer_ids]),
        AuditLog.action.notin_(sorted(COVERED_AUDIT_ACTIONS)),
    )


@dataclass
class TimelineEntry:
    at: datetime
    kind: str
    customer_id: int
    staff_id: int | None
    staff_userid: str | None
    staff_name: str | None
    ref_type: str
    ref_id: int
    detail: str | None
    actor: str | None


def for_customer(principal: Principal, customer_id: int, *, page: int, per_page: int, kind: str | None = None) -> Page:
    """The customer's timeline (any of its ids, merged ones included), newest first; 404 when
    ``principal`` may not see the customer."""
    root = resolve_id(principal.corp_id, customer_id)
    if root is None or db.session.scalar(visible(principal).where(Customer.id == root)) is None:
        raise NotFound("customer")
    ids = merge_service.group_ids(principal.corp_id, root)
    union = union_all(*(query(principal.corp_id, ids) for query in SOURCES.values())).subquery("timeline")
    conditions = []
    if not principal.is_admin:
        conditions.append(or_(union.c.staff_id.is_(None), union.c.staff_id == (principal.staff_id or -1)))
    if kind:
        conditions.append(union.c.kind == kind)
    stmt = select(*[union.c[name] for name in COLUMNS]).where(and_(True, *conditions))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.execute(
        stmt.order_by(union.c.at.desc(), union.c.ref_type, union.c.ref_id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    staff_ids = {row.staff_id for row in rows if row.staff_id is not None}
    staff = {s.id: s for s in db.session.scalars(select(Staff).where(Staff.id.in_(staff_ids)))} if staff_ids else {}
    items = [
        TimelineEntry(
            at=row.at,
            kind=row.kind,
            customer_id=row.customer_id,
            staff_id=row.staff_id,
            staff_userid=staff[row.staff_id].userid if row.staff_id in staff else None,
            staff_name=staff[row.staff_id].name if row.staff_id in staff else None,
            ref_type=row.ref_type,
            ref_id=row.ref_id,
            detail=row.detail,
            actor=row.actor,
        )
        for row in rows
    ]
    return Page(items=items, total=total, page=page, per_page=per_page)
