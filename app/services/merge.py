"""Merging customers that are one person, and undoing it exactly; merge suggestions and
identity conflicts (the review queue of OneID).

A merge keeps the older customer and moves every fact of the other onto it. "Every fact" is
discovered from the SQLAlchemy metadata, not listed: any column named ``customer_id`` or with a
foreign key to ``customer.id``, in any table not marked ``info={"oneid": "keep"}`` (the OneID
bookkeeping itself). A table added by a later feature is therefore moved without changing this
module. The row ids moved, per table, go into the :class:`MergeRecord`, which is what lets an
unmerge put exactly those rows back.

Unique constraints: a row that cannot move because the survivor already has its twin (both
customers followed by the same rep: unique (corp, staff, customer)) is *folded* into the twin by
the table's fold rule (:func:`register_fold`; follow relations merge their tags, remark and
status) and stays on the absorbed customer, where an unmerge finds it untouched. A table with
no fold rule keeps such rows on the absorbed customer (listed in ``kept``).

The absorbed customer keeps its row with ``merged_into_id`` set, so old ids, links, alerts and
exports keep resolving to the survivor (``customers.resolve_id``).
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Table, and_, not_, or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError

from app.dbutil import insert_ignoring_conflict
from app.errors import ApiError, Conflict, NotFound
from app.extensions import db
from app.models import (
    Base,
    ConflictKind,
    ConflictStatus,
    Customer,
    FollowRelation,
    FollowStatus,
    IdentityConflict,
    MergeKind,
    MergeRecord,
    MergeStatus,
    MergeSuggestion,
    SuggestionStatus,
    utcnow,
)
from app.schemas.common import Page
from app.services import audit, oneid
from app.services.auth import Principal
from app.services.customers import resolve_id
from app.services.paging import paginate

log = logging.getLogger(__name__)

# Survivor fields a merge may fill from the absorbed customer (and an unmerge restores).
PROFILE_FIELDS = ("name", "avatar", "gender", "corp_name", "first_channel", "last_channel")
MAX_MERGE_IDS = 20


# -- discovery and folds ---------------------------------------------------------------------


def customer_columns() -> list[Column]:
    """Every column that holds a customer's id in a table whose rows are that customer's facts."""
    columns = []
    for table in Base.metadata.sorted_tables:
        if table.name == Customer.__tablename__ or table.info.get("oneid") == "keep":
            continue
        for column in table.columns:
            refers = any(fk.target_fullname == "customer.id" for fk in column.foreign_keys)
            if refers or column.name == "customer_id":
                columns.append(column)
    return columns


@dataclass(frozen=True)
class Fold:
    """How a table folds a row that cannot move into the survivor's twin row, and back.

    ``fold(corp_id, absorbed_pk, survivor_pk) -> undo`` (JSON-able) and
    ``unfold(corp_id, survivor_pk, undo)``, which must only revert what is still as the fold
    left it (the survivor's row may have changed since)."""

    fold: Callable[[int, tuple, tuple], dict]
    unfold: Callable[[int, tuple, dict], None]


FOLDS: dict[str, Fold] = {}


def register_fold(table_name: str, fold: Callable, unfold: Callable) -> None:
    """Give ``table_name`` a fold rule for rows that collide on a unique constraint."""
    FOLDS[table_name] = Fold(fold, unfold)


def _enc(value):
    """A column value as JSON (datetimes tagged so they come back as datetimes)."""
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    return value.value if isinstance(value, enum.Enum) else value


def _dec(value):
    if isinstance(value, dict) and "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    return value


def _fold_follow(corp_id: int, absorbed_pk: tuple, survivor_pk: tuple) -> dict:
    """Both customers followed by one rep: the survivor's relation takes the other's tags and
    whatever it lacks (a live status, the remark, the earlier add and its channel)."""
    mine = db.session.get(FollowRelation, survivor_pk[0])
    theirs = db.session.get(FollowRelation, absorbed_pk[0])
    changes: dict[str, list] = {}

    def put(name, value):
        before = getattr(mine, name)
        if before != value:
            changes[name] = [_enc(before), _enc(value)]
            setattr(mine, name, value)

    live = (FollowStatus.active, FollowStatus.pending)
    if theirs.status in live and mine.status not in live:
        for name in ("status", "deleted_at", "deleted_by"):
            put(name, getattr(theirs, name))
    for name in ("remark", "description"):
        if not getattr(mine, name) and getattr(theirs, name):
            put(name, getattr(theirs, name))
    if theirs.added_at < mine.added_at:
        for name in ("added_at", "state", "add_way"):
            put(name, getattr(theirs, name))
    added = [t for t in theirs.tags if t not in mine.tags]
    mine.tags.extend(added)
    return {"fields": changes, "tags": [t.id for t in added]}


def _unfold_follow(corp_id: int, survivor_pk: tuple, undo: dict) -> None:
    mine = db.session.get(FollowRelation, survivor_pk[0])
    if mine is None:
        return
    for name, (before, after) in undo.get("fields", {}).items():
        if _enc(getattr(mine, name)) == after:
            setattr(mine, name, _dec(before))
    added = set(undo.get("tags", []))
    mine.tags = [t for t in mine.tags if t.id not in added]


register_fold(FollowRelation.__tablename__, _fold_follow, _unfold_follow)


# -- moving rows -----------------------------------------------------------------------------


def _unique_sets(table: Table, column: Column) -> list[tuple[list[Column], object]]:
    """The unique column sets of ``table`` that include ``column``, each with its partial-index
    predicate (or None)."""
    dialect = db.session.get_bind().dialect.name
    sets = []
    for constraint in table.constraints:
        cols = list(getattr(constraint, "columns", []))
        unique = constraint is table.primary_key or constraint.__visit_name__ == "unique_constraint"
        if unique and column in cols:
            sets.append((cols, None))
    for index in table.indexes:
        if index.unique and column in index.columns.values():
            where = index.dialect_options[dialect].get("where") if dialect in ("postgresql", "sqlite") else None
            sets.append((list(index.columns), where))
    # Constraints and indexes are sets: a stable order keeps merge records reproducible.
    return sorted(sets, key=lambda s: ([c.name for c in s[0]], str(s[1])))


def _pk(table: Table) -> list[Column]:
    return list(table.primary_key.columns) or list(table.columns)


def _collisions(table: Table, column: Column, survivor_id: int, absorbed_id: int) -> dict[tuple, tuple]:
    """Rows of the absorbed customer whose move would break a unique constraint: {their pk:
    the survivor's twin pk}."""
    pk = _pk(table)
    found: dict[tuple, tuple] = {}
    for cols, where in _unique_sets(table, column):
        theirs = select(table).where(column == absorbed_id)
        mine = select(table).where(column == survivor_id)
        if where is not None:
            predicate = text(str(where)) if isinstance(where, str) else where
            theirs, mine = theirs.where(predicate), mine.where(predicate)
        a, s = theirs.subquery(), mine.subquery()
        match = [a.c[c.name] == s.c[c.name] for c in cols if c is not column]
        rows = db.session.execute(
            select(*[a.c[c.name] for c in pk], *[s.c[c.name] for c in pk]).select_from(a.join(s, and_(True, *match)))
        ).all()
        for row in rows:
            found.setdefault(tuple(row[: len(pk)]), tuple(row[len(pk) :]))
    return found


def _move_table(
    table: Table, column: Column, survivor_id: int, absorbed_id: int, corp_id: int, record: MergeRecord
) -> None:
    pk = _pk(table)
    key = f"{table.name}.{column.name}"
    collided = _collisions(table, column, survivor_id, absorbed_id)
    stmt = update(table).where(column == absorbed_id).values({column.name: survivor_id})
    if collided:
        stmt = stmt.where(not_(tuple_(*pk).in_(list(collided))))
    moved = [list(row) for row in db.session.execute(stmt.returning(*pk)).all()]
    if moved:
        record.moved[key] = {"pk": [c.name for c in pk], "rows": moved}
    fold = FOLDS.get(table.name)
    for theirs, mine in sorted(collided.items()):
        if fold:
            db.session.expire_all()
            undo = fold.fold(corp_id, theirs, mine)
            record.folds.append({"table": table.name, "absorbed": list(theirs), "survivor": list(mine), "undo": undo})
        else:
            record.kept.setdefault(key, []).append(list(theirs))


def _fill_profile(survivor: Customer, absorbed: Customer) -> dict:
    """The survivor takes what it lacks; the absorbed (newer) customer's latest channel wins."""
    changes = {}
    for name in PROFILE_FIELDS:
        mine, theirs = getattr(survivor, name), getattr(absorbed, name)
        take = theirs not in (None, "", 0) and (mine in (None, "", 0) or name == "last_channel") and mine != theirs
        if take:
            changes[name] = [mine, theirs]
            setattr(survivor, name, theirs)
    return changes


def merge_locked(
    corp_id: int, survivor_id: int, absorbed_id: int, *, actor: str, reason: str, kind: str, source: str
) -> MergeRecord:
    """Merge ``absorbed_id`` into ``survivor_id``. The caller holds both customers' exclusive
    OneID locks and has checked both are surviving customers; runs in the caller's
    transaction."""
    db.session.flush()
    db.session.expire_all()
    survivor = db.session.get(Customer, survivor_id)
    absorbed = db.session.get(Customer, absorbed_id)
    record = MergeRecord(
        corp_id=corp_id,
        survivor_id=survivor_id,
        absorbed_id=absorbed_id,
        kind=MergeKind(kind),
        actor=actor,
        source=source,
        reason=reason,
        moved={},
        folds=[],
        kept={},
        profile={},
    )
    for column in customer_columns():
        _move_table(column.table, column, survivor_id, absorbed_id, corp_id, record)
    db.session.flush()
    db.session.expire_all()
    survivor = db.session.get(Customer, survivor_id)
    absorbed = db.session.get(Customer, absorbed_id)
    record.profile = _fill_profile(survivor, absorbed)
    absorbed.merged_into_id = survivor_id
    db.session.add(record)
    db.session.flush()
    _close_reviews(corp_id, survivor_id, absorbed_id, record.id)
    audit.record(
        corp_id,
        actor,
        "customer.merge",
        "customer",
        survivor_id,
        reason=reason,
        data={
            "merge_id": record.id,
            "absorbed_id": absorbed_id,
            "kind": str(record.kind),
            "source": source,
            "moved": {key: len(entry["rows"]) for key, entry in record.moved.items()},
            "folded": len(record.folds),
        },
    )
    log.info("customer %s merged into %s (%s, merge %s)", absorbed_id, survivor_id, kind, record.id)
    return record


def _close_reviews(corp_id: int, survivor_id: int, absorbed_id: int, merge_id: int) -> None:
    a, b = sorted((survivor_id, absorbed_id))
    db.session.execute(
        update(MergeSuggestion)
        .where(
            MergeSuggestion.corp_id == corp_id,
            MergeSuggestion.customer_a_id == a,
            MergeSuggestion.customer_b_id == b,
            MergeSuggestion.status == SuggestionStatus.open,
        )
        .values(status=SuggestionStatus.merged, merge_id=merge_id, decided_at=utcnow(), updated_at=utcnow())
    )
    db.session.execute(
        update(IdentityConflict)
        .where(
            IdentityConflict.corp_id == corp_id,
            IdentityConflict.status == ConflictStatus.open,
            IdentityConflict.key.like(f"%:{a},{b}:%"),
        )
        .values(status=ConflictStatus.merged, resolved_at=utcnow(), updated_at=utcnow())
    )


def merge(
    corp_id: int, ids: list[int], *, actor: str, reason: str, kind: str = "manual", source: str = "api"
) -> list[MergeRecord]:
    """Merge the customers ``ids`` (old ids resolve to their survivors) into the oldest one.
    404 for an unknown id; 409 when they are one customer already."""
    roots = []
    for customer_id in ids:
        root = resolve_id(corp_id, customer_id)
        if root is None:
            raise NotFound(f"customer {customer_id}")
        roots.append(root)
    locks = oneid.Locks()
    for _ in range(oneid.MAX_REPLANS):
        wanted = set(roots)
        oneid.lock_customers(corp_id, wanted, locks, exclusive=True)
        # A merge may have landed between resolving and locking: resolve again under the locks.
        roots = [resolve_id(corp_id, r) for r in roots]
        if set(roots) <= wanted:
            break
    else:
        raise oneid.OneIdBusy([])
    distinct = list(dict.fromkeys(roots))
    if len(distinct) < 2:
        raise Conflict("these ids are one customer already", {"ids": ["resolve to one customer"]})
    survivor, *others = oneid._oldest(distinct)
    return [
        merge_locked(corp_id, survivor, other, actor=actor, reason=reason, kind=kind, source=source) for other in others
    ]


@dataclass
class MergeResult:
    survivor_id: int
    merges: list[MergeRecord]


def merge_as(principal: Principal, ids: list[int], reason: str) -> MergeResult:
    """An admin merges customers (API); commits."""
    _require_admin(principal)
    with oneid.busy_answers_409():
        records = merge(principal.corp_id, ids, actor=principal.actor, reason=reason)
        db.session.commit()
    return MergeResult(records[0].survivor_id, records)


def unmerge(corp_id: int, merge_id: int, *, actor: str, reason: str) -> MergeRecord:
    """Undo a merge exactly: the rows it moved go back, folds are reverted, the survivor's
    filled fields are restored where unchanged since, and the absorbed customer answers again.
    Rows added to the survivor after the merge stay with it. 409 when the merge is undone
    already or its survivor was itself merged later (unmerge that merge first)."""
    record = db.session.scalar(select(MergeRecord).where(MergeRecord.id == merge_id, MergeRecord.corp_id == corp_id))
    if record is None:
        raise NotFound("merge")
    if record.status == MergeStatus.undone:
        raise Conflict(f"merge {merge_id} is undone already")
    locks = oneid.Locks()
    oneid.lock_customers(corp_id, [record.survivor_id, record.absorbed_id], locks, exclusive=True)
    db.session.flush()
    db.session.expire_all()
    survivor = db.session.get(Customer, record.survivor_id)
    absorbed = db.session.get(Customer, record.absorbed_id)
    if survivor.merged_into_id is not None:
        later = db.session.scalar(
            select(MergeRecord.id).where(
                MergeRecord.absorbed_id == survivor.id, MergeRecord.status == MergeStatus.active
            )
        )
        raise Conflict(
            f"customer {survivor.id} was merged into {survivor.merged_into_id} since (merge {later}); "
            "unmerge that first"
        )
    if absorbed.merged_into_id != survivor.id:
        raise Conflict(f"customer {absorbed.id} is no longer merged into {survivor.id}")
    try:
        with db.session.begin_nested():
            restored = _restore(corp_id, record)
    except IntegrityError as exc:
        raise Conflict(f"merge {merge_id} cannot be undone: a row it moved back collides ({exc.orig})") from exc
    db.session.expire_all()
    survivor = db.session.get(Customer, record.survivor_id)
    absorbed = db.session.get(Customer, record.absorbed_id)
    for name, (before, after) in record.profile.items():
        if getattr(survivor, name) == after:
            setattr(survivor, name, before)
    absorbed.merged_into_id = None
    record.status = MergeStatus.undone
    record.undone_at, record.undone_by, record.undo_reason = utcnow(), actor, reason
    audit.record(
        corp_id,
        actor,
        "customer.unmerge",
        "customer",
        record.survivor_id,
        reason=reason,
        data={"merge_id": record.id, "absorbed_id": record.absorbed_id, "restored": restored},
    )
    db.session.flush()
    return record


def _restore(corp_id: int, record: MergeRecord) -> dict[str, int]:
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    restored = {}
    for key, entry in record.moved.items():
        table_name, column_name = key.split(".", 1)
        table = tables.get(table_name)
        if table is None:
            log.warning("merge %s moved rows of %s, which no longer exists", record.id, table_name)
            continue
        column = table.c[column_name]
        pk = [table.c[name] for name in entry["pk"]]
        # A pk that contains the customer column changed with the move.
        rows = [
            tuple(record.survivor_id if c is column else value for c, value in zip(pk, row, strict=True))
            for row in entry["rows"]
        ]
        count = 0
        for start in range(0, len(rows), 1000):
            result = db.session.execute(
                update(table)
                .where(column == record.survivor_id, tuple_(*pk).in_(rows[start : start + 1000]))
                .values({column.name: record.absorbed_id})
            )
            count += result.rowcount
        restored[key] = count
    for fold in reversed(record.folds):
        rule = FOLDS.get(fold["table"])
        if rule:
            rule.unfold(corp_id, tuple(fold["survivor"]), fold["undo"])
    db.session.flush()
    return restored


def unmerge_as(principal: Principal, customer_id: int, merge_id: int, reason: str) -> MergeRecord:
    """An admin undoes a merge of ``customer_id`` (the survivor's id, or the absorbed one's);
    commits."""
    _require_admin(principal)
    record = db.session.scalar(
        select(MergeRecord).where(MergeRecord.id == merge_id, MergeRecord.corp_id == principal.corp_id)
    )
    if record is None or customer_id not in (record.survivor_id, record.absorbed_id):
        raise NotFound("merge")
    with oneid.busy_answers_409():
        record = unmerge(principal.corp_id, merge_id, actor=principal.actor, reason=reason)
        db.session.commit()
    return record


def merges_of(principal: Principal, customer_id: int, page: int, per_page: int) -> Page:
    """The merges (active and undone) that involved ``customer_id`` or anything merged into it."""
    _require_admin(principal)
    root = resolve_id(principal.corp_id, customer_id)
    if root is None:
        raise NotFound("customer")
    ids = group_ids(principal.corp_id, root)
    stmt = select(MergeRecord).where(
        MergeRecord.corp_id == principal.corp_id,
        or_(MergeRecord.survivor_id.in_(ids), MergeRecord.absorbed_id.in_(ids)),
    )
    return paginate(stmt, page, per_page, MergeRecord.id.desc())


def group_ids(corp_id: int, root: int) -> list[int]:
    """``root`` and every customer merged into it, directly or through others."""
    ids, frontier = [root], [root]
    while frontier:
        frontier = list(
            db.session.scalars(
                select(Customer.id).where(Customer.corp_id == corp_id, Customer.merged_into_id.in_(frontier))
            )
        )
        ids.extend(frontier)
    return ids


# -- suggestions and conflicts -----------------------------------------------------------------


def suggest(corp_id: int, customer_id: int, other_id: int, reason: str, evidence: dict) -> None:
    """Record that two customers may be one person (idempotent; a decided pair stays decided)."""
    if customer_id == other_id:
        return
    a, b = sorted((customer_id, other_id))
    now = utcnow()
    insert_ignoring_conflict(
        MergeSuggestion,
        {
            "corp_id": corp_id,
            "customer_a_id": a,
            "customer_b_id": b,
            "reason": reason,
            "evidence": evidence,
            "status": SuggestionStatus.open,
            "created_at": now,
            "updated_at": now,
        },
        ["corp_id", "customer_a_id", "customer_b_id"],
    )


def flag_conflict(corp_id: int, kind: str, customer_ids: list[int], link: list, source: str, detail: str) -> None:
    """Flag a refused strong link for review (idempotent: a retried callback flags once)."""
    identities = sorted([str(t), v] for t, v in link)
    digest = hashlib.sha256(repr(identities).encode()).hexdigest()[:16]
    ids = sorted(set(customer_ids))
    now = utcnow()
    new = insert_ignoring_conflict(
        IdentityConflict,
        {
            "corp_id": corp_id,
            "key": f"{kind}:{','.join(map(str, ids))}:{digest}",
            "kind": ConflictKind(kind),
            "customer_ids": ids,
            "identities": identities,
            "source": source,
            "detail": detail,
            "status": ConflictStatus.open,
            "created_at": now,
            "updated_at": now,
        },
        ["corp_id", "key"],
    )
    if new:
        log.warning("identity conflict flagged for review (%s, customers %s): %s", kind, ids, detail)




def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "only an admin may do this")


def list_suggestions(principal: Principal, status: SuggestionStatus | None, page: int, per_page: int) -> Page:
    _require_admin(principal)
    stmt = select(MergeSuggestion).where(MergeSuggestion.corp_id == principal.corp_id)
    if status:
        stmt = stmt.where(MergeSuggestion.status == status)
    return paginate(stmt, page, per_page, MergeSuggestion.id.desc())


def _open_suggestion(principal: Principal, suggestion_id: int, lock: bool) -> MergeSuggestion:
    _require_admin(principal)
    stmt = select(MergeSuggestion).where(
        MergeSuggestion.id == suggestion_id, MergeSuggestion.corp_id == principal.corp_id
    )
    row = db.session.scalar(stmt.with_for_update().execution_options(populate_existing=True) if lock else stmt)
    if row is None:
        raise NotFound("merge suggestion")
    if row.status != SuggestionStatus.open:
        raise Conflict(f"the suggestion is {row.status} already")
    return row


def accept_suggestion(principal: Principal, suggestion_id: int, reason: str) -> MergeResult:
    """Merge the two customers of a suggestion; commits."""
    row = _open_suggestion(principal, suggestion_id, lock=False)
    pair = [row.customer_a_id, row.customer_b_id]
    if len({resolve_id(principal.corp_id, cid) for cid in pair}) < 2:
        row.status, row.decided_at = SuggestionStatus.merged, utcnow()
        db.session.commit()
        raise Conflict("the two customers are one customer already")
    # The customers' OneID locks come first, the suggestion's row lock second: the order an
    # automatic merge of the same pair uses too, so the two cannot wait on each other.
    with oneid.busy_answers_409():
        records = merge(
            principal.corp_id,
            pair,
            actor=principal.actor,
            reason=f"suggestion {row.id} ({row.reason}): {reason}",
            kind="suggestion",
        )
    row = db.session.scalar(
        select(MergeSuggestion)
        .where(MergeSuggestion.id == suggestion_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    # The merge itself closed the suggestion as merged; anything else is a concurrent decision.
    if row.status != SuggestionStatus.merged or row.merge_id != records[0].id:
        db.session.rollback()
        raise Conflict(f"the suggestion was {row.status} meanwhile")
    row.status = SuggestionStatus.accepted
    row.decided_by, row.decided_at, row.decision_reason = principal.actor, utcnow(), reason
    row.merge_id = records[0].id
    db.session.commit()
    return MergeResult(records[0].survivor_id, records)


def reject_suggestion(principal: Principal, suggestion_id: int, reason: str) -> MergeSuggestion:
    """Decide that the two are different people; the pair is not suggested again. Commits."""
    row = _open_suggestion(principal, suggestion_id, lock=True)
    row.status = SuggestionStatus.rejected
    row.decided_by, row.decided_at, row.decision_reason = principal.actor, utcnow(), reason
    audit.record(
        principal.corp_id,
        principal.actor,
        "merge_suggestion.reject",
        "merge_suggestion",
        row.id,
        reason=reason,
        data={"customer_ids": [row.customer_a_id, row.customer_b_id], "reason": row.reason},
    )
    db.session.commit()
    return row


def list_conflicts(principal: Principal, status: ConflictStatus | None, page: int, per_page: int) -> Page:
    _require_admin(principal)
    stmt = select(IdentityConflict).where(IdentityConflict.corp_id == principal.corp_id)
    if status:
        stmt = stmt.where(IdentityConflict.status == status)
    return paginate(stmt, page, per_page, IdentityConflict.id.desc())


def dismiss_conflict(principal: Principal, conflict_id: int, reason: str) -> IdentityConflict:
    """Close a conflict as reviewed without merging (merge with POST /customers/merge). Commits."""
    _require_admin(principal)
    row = db.session.scalar(
        select(IdentityConflict).where(
            IdentityConflict.id == conflict_id, IdentityConflict.corp_id == principal.corp_id
        )
    )
    if row is None:
        raise NotFound("identity conflict")
    if row.status != ConflictStatus.open:
        raise Conflict(f"the conflict is {row.status} already")
    row.status = ConflictStatus.dismissed
    row.resolved_by, row.resolved_at, row.resolution_reason = principal.actor, utcnow(), reason
    audit.record(
        principal.corp_id,
        principal.actor,
        "identity_conflict.dismiss",
        "identity_conflict",
        row.id,
        reason=reason,
        data={"customer_ids": row.customer_ids, "kind": str(row.kind)},
    )
    db.session.commit()
    return row
