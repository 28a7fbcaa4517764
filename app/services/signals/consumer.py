"""The drainer: reads the event stream, bulk-inserts the raw events and updates visits, shares,
intent scores and presence — one database transaction per cycle of up to ``READ_COUNT`` batches.

Exactly-once effect on top of an at-least-once stream:
- one drainer at a time (a Redis lock), reading as the fixed consumer ``drainer`` of the group,
  so a drainer that dies leaves its entries pending for the next one, which reads them first;
- raw events are inserted with ON CONFLICT (session, client event id) DO NOTHING and only the
  rows actually inserted feed the aggregates, in the same transaction; entries are acknowledged
  and deleted from the stream only after that transaction commits.
So a crash anywhere replays entries whose events are then found already inserted, and a retried
batch from the client counts once. An entry that fails on its own (not a database outage) is
moved to the dead-letter stream ``cards:events:dead`` with its error, never dropped.

Re-attribution (:func:`reattribute`) runs when an anonymous device is claimed at login. The
drainer reads each session's customer under FOR SHARE, and the claim updates the session row
first, so the two serialize: events drained before the claim are re-attributed by it, events
drained after it see the customer.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError, ResponseError
from sqlalchemy import bindparam, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError

from app.extensions import db, get_redis
from app.models import Card, CardEvent, CardEventType, CardShare, CardVisit, MpSession, utcnow
from app.services.signals import intent, presence
from app.services.signals.ingest import DRAIN_FLAG, GROUP, STREAM, trigger_drain

log = logging.getLogger(__name__)

LOCK = "cards:events:drain-lock"
LOCK_TTL = 30
CONSUMER = "drainer"
DEAD_LETTERS = "cards:events:dead"
READ_COUNT = 50  # stream entries (request batches, ≤ 50 events each) per cycle
JOB_BUDGET_SECONDS = 2.0  # then the job re-enqueues itself, so other high-queue jobs interleave
# A gap longer than this between a session's events on a card ends the visit (the page was
# hidden or closed); shorter gaps count as dwell. Heartbeats come every few seconds.
VISIT_GAP = timedelta(seconds=60)

# Failures of the infrastructure, not of a batch: retrying later is right, dead-lettering is not.
_OUTAGES = (OperationalError, InterfaceError, RedisError)
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_FREEZE = CardEventType.leave  # ends a visit; never opens one


@dataclass(frozen=True)
class Activity:
    """A new, attributed event other than a heartbeat: what ACTIVITY_HOOKS receive after commit."""

    corp_id: int
    customer_id: int
    staff_id: int
    card_id: int
    content_id: int | None
    type: CardEventType
    occurred_at: datetime


# Called after each committed cycle with its activities (e.g. real-time alerts to the rep).
ACTIVITY_HOOKS: list[Callable[[list[Activity]], None]] = []


def on_activity(hook: Callable[[list[Activity]], None]) -> Callable[[list[Activity]], None]:
    """Register ``hook`` to be called with each committed cycle's activities."""
    ACTIVITY_HOOKS.append(hook)
    return hook


@dataclass
class Ev:
    corp_id: int
    session_id: int
    cid: str
    type: CardEventType
    occurred_at: datetime
    received_at: datetime
    card_id: int
    content_id: int | None
    code: str | None
    order: int
    customer_id: int | None = None


@dataclass
class VisitState:
    id: int | None
    corp_id: int
    card_id: int
    content_id: int | None
    session_id: int
    customer_id: int | None
    via_share_code: str | None
    started_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    dwell_seconds: float
    dirty: bool = False


@dataclass
class ShareInfo:
    session_id: int
    customer_id: int | None
    card_id: int
    content_id: int | None
    depth: int | None  # None until a new share's depth is computed


@dataclass
class Cycle:
    """Everything one drain cycle derives from its new events."""

    visits: dict[tuple[int, int, int | None], VisitState] = field(default_factory=dict)
    new_visits: list[VisitState] = field(default_factory=list)
    shares: dict[str, ShareInfo] = field(default_factory=dict)
    contributions: dict[int, dict[tuple[int, int], list[intent.Contribution]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    activities: list[Activity] = field(default_factory=list)
    seen: dict[tuple[int, int], presence.Seen] = field(default_factory=dict)


# -- the job ---------------------------------------------------------------------------------
def drain_job() -> int:
    """RQ entry point: drain the stream for up to JOB_BUDGET_SECONDS; returns events inserted."""
    return drain()


def drain(budget: float = JOB_BUDGET_SECONDS) -> int:
    """Process stream entries until the stream is empty or ``budget`` seconds have passed (then
    re-enqueue). Returns how many new events were stored. Safe to call concurrently: only the
    lock holder drains; the others return at once, and the holder re-checks the flag they
    leave behind before it stops."""
    redis = get_redis()
    deadline = time.monotonic() + budget
    stored = 0
    while True:
        token = uuid.uuid4().hex
        if not redis.set(LOCK, token, nx=True, ex=LOCK_TTL):
            return stored
        out_of_time = False
        try:
            _ensure_group(redis)
            entries = _read(redis, "0")  # left pending by a drainer that died mid-cycle
            while True:
                if not entries:
                    entries = _read(redis, ">")
                if not entries:
                    redis.delete(DRAIN_FLAG)
                    entries = _read(redis, ">")  # appended before the flag went
                    if not entries:
                        break
                stored += _handle(redis, entries)
                entries = []
                redis.expire(LOCK, LOCK_TTL)
                if time.monotonic() > deadline:
                    out_of_time = True
                    break
        finally:
            redis.eval(_RELEASE, 1, LOCK, token)
        if out_of_time:
            trigger_drain()
            return stored
        if not redis.exists(DRAIN_FLAG):
            return stored


def _ensure_group(redis) -> None:
    try:
        redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _read(redis, start: str) -> list[tuple[bytes, dict]]:
    answer = redis.xreadgroup(GROUP, CONSUMER, {STREAM: start}, count=READ_COUNT)
    return answer[0][1] if answer else []


def _handle(redis, entries: list[tuple[bytes, dict]]) -> int:
    """Process entries in one transaction; on a failure that is not a database outage, retry
    them one by one and dead-letter the ones that fail alone. Acknowledge after commit."""
    try:
        stored = process(entries)
    except _OUTAGES:
        db.session.rollback()
        raise  # the database or Redis is away (or a deadlock): the entries stay pending for the next drain
    except Exception:
        db.session.rollback()
        log.exception("a cycle of %d card event batches failed; isolating the bad ones", len(entries))
        stored = 0
        for entry in entries:
            try:
                stored += process([entry])
            except _OUTAGES:
                db.session.rollback()
                raise
            except Exception as exc:  # fails on its own: set aside, or it would block every later batch
                db.session.rollback()
                _dead_letter(redis, entry, exc)
    pipe = redis.pipeline()
    ids = [entry_id for entry_id, _ in entries]
    pipe.xack(STREAM, GROUP, *ids)
    pipe.xdel(STREAM, *ids)
    pipe.execute()
    return stored


def _dead_letter(redis, entry: tuple[bytes, dict], exc: Exception) -> None:
    entry_id, fields = entry
    log.error("card event batch %s moved to %s: %s", entry_id, DEAD_LETTERS, exc)
    redis.xadd(DEAD_LETTERS, {**(fields or {}), b"id": entry_id, b"error": str(exc)[:1000]})


# -- one cycle --------------------------------------------------------------------------------
def _millis(value) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _parse(entries: list[tuple[bytes, dict]]) -> list[Ev]:
    events: list[Ev] = []
    seen: set[tuple[int, str]] = set()
    for _entry_id, fields in entries:
        if not fields:  # deleted before it was acknowledged: nothing left to do
            continue
        session_id, corp_id = int(fields[b"s"]), int(fields[b"c"])
        received_at = _millis(fields[b"r"])
        for cid, type_, ts, card_id, content_id, code in json.loads(fields[b"e"]):
            if (session_id, cid) in seen:  # the client retried a batch before we drained it
                continue
            seen.add((session_id, cid))
            events.append(
                Ev(
                    corp_id=corp_id,
                    session_id=session_id,
                    cid=cid,
                    type=CardEventType(type_),
                    occurred_at=min(_millis(ts), received_at),
                    received_at=received_at,
                    card_id=int(card_id),
                    content_id=int(content_id) if content_id is not None else None,
                    code=code,
                    order=len(events),
                )
            )
    return events


def process(entries: list[tuple[bytes, dict]]) -> int:
    """Store and apply the events of ``entries``; commits. Returns how many were new."""
    events = _parse(entries)
    if not events:
        return 0
    sessions = _lock_sessions({e.session_id for e in events})
    cards = _cards({e.card_id for e in events})
    kept = []
    for event in events:
        session, card = sessions.get(event.session_id), cards.get(event.card_id)
        if session is None or card is None or session[0] != event.corp_id or card[0] != event.corp_id:
            log.warning("dropping card event %s of session %s: unknown session or card", event.cid, event.session_id)
            continue
        event.customer_id = session[1]
        kept.append(event)
    new = _insert_events(kept)
    cycle = Cycle()
    scoring = intent.Scoring()
    if new:
        _load_shares(new, cycle)
        _visits(new, cards, cycle)
        _new_shares(new, cycle)
        _write_visits(cycle)
        for corp_id, contributions in cycle.contributions.items():
            intent.apply(corp_id, contributions, scoring)
    db.session.commit()
    _after_commit(cycle, scoring)
    return len(new)


def _after_commit(cycle: Cycle, scoring: intent.Scoring) -> None:
    if cycle.seen:
        try:
            presence.record(list(cycle.seen.values()))
        except RedisError:  # presence is a live view: a miss fades within seconds, never worth a retry
            log.warning("could not record card presence", exc_info=True)
    scoring.notify()
    if cycle.activities:
        for hook in list(ACTIVITY_HOOKS):
            try:
                hook(cycle.activities)
            except Exception:  # a subscriber's bug must not stop ingestion
                log.exception("activity hook %r failed", hook)


def _lock_sessions(ids: set[int]) -> dict[int, tuple[int, int | None]]:
    """{session id: (corp id, customer id)}, read under FOR SHARE so a concurrent claim (login)
    waits for this cycle to commit, and this cycle waits for a claim in flight."""
    rows = db.session.execute(
        select(MpSession.id, MpSession.corp_id, MpSession.customer_id)
        .where(MpSession.id.in_(ids))
        .with_for_update(read=True)
    ).all()
    return {r.id: (r.corp_id, r.customer_id) for r in rows}


def _cards(ids: set[int]) -> dict[int, tuple[int, int]]:
    rows = db.session.execute(select(Card.id, Card.corp_id, Card.staff_id).where(Card.id.in_(ids))).all()
    return {r.id: (r.corp_id, r.staff_id) for r in rows}


def _dialect():
    return postgresql if db.engine.dialect.name == "postgresql" else sqlite


_EVENT_COLUMNS = (
    "corp_id",
    "session_id",
    "client_event_id",
    "type",
    "card_id",
    "content_id",
    "customer_id",
    "share_code",
    "occurred_at",
    "received_at",
)
# PostgreSQL: one statement per cycle whatever its size — the rows travel as one array per
# column and are unnested server-side, so the SQL text (and its parse) never grows.
_PG_INSERT_EVENTS = text(
    "INSERT INTO card_event (corp_id, session_id, client_event_id, type, card_id, content_id, customer_id, "
    "share_code, occurred_at, received_at, created_at, updated_at) "
    "SELECT u.*, :now, :now FROM unnest("
    "CAST(:corp_id AS integer[]), CAST(:session_id AS integer[]), CAST(:client_event_id AS varchar[]), "
    "CAST(:type AS varchar[]), CAST(:card_id AS integer[]), CAST(:content_id AS integer[]), "
    "CAST(:customer_id AS integer[]), CAST(:share_code AS varchar[]), CAST(:occurred_at AS timestamptz[]), "
    "CAST(:received_at AS timestamptz[])) AS u "
    "ON CONFLICT (session_id, client_event_id) DO NOTHING RETURNING session_id, client_event_id"
)


def _insert_events(events: list[Ev]) -> list[Ev]:
    """INSERT … ON CONFLICT DO NOTHING; the events actually inserted, in stream order."""
    if not events:
        return []
    now = utcnow()
    by_key = {(e.session_id, e.cid): e for e in events}
    values = {
        "corp_id": [e.corp_id for e in events],
        "session_id": [e.session_id for e in events],
        "client_event_id": [e.cid for e in events],
        "type": [str(e.type) for e in events],
        "card_id": [e.card_id for e in events],
        "content_id": [e.content_id for e in events],
        "customer_id": [e.customer_id for e in events],
        "share_code": [e.code for e in events],
        "occurred_at": [e.occurred_at for e in events],
        "received_at": [e.received_at for e in events],
    }
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.execute(_PG_INSERT_EVENTS, {**values, "now": now})
    else:
        stmt = (
            sqlite.insert(CardEvent.__table__)
            .on_conflict_do_nothing(index_elements=["session_id", "client_event_id"])
            .returning(CardEvent.session_id, CardEvent.client_event_id)
        )
        params = [
            {**dict(zip(_EVENT_COLUMNS, row, strict=True)), "created_at": now, "updated_at": now}
            for row in zip(*values.values(), strict=True)
        ]
        rows = connection.execute(stmt, params)
    inserted = {(r[0], r[1]) for r in rows}
    return [by_key[key] for key in by_key if key in inserted]


def _load_shares(events: list[Ev], cycle: Cycle) -> None:
    """Shares created by this cycle, and the existing shares its visits arrived through."""
    for e in events:
        if e.type == CardEventType.share:
            cycle.shares[e.code] = ShareInfo(e.session_id, e.customer_id, e.card_id, e.content_id, None)
    wanted = {e.code for e in events if e.type != CardEventType.share and e.code} - cycle.shares.keys()
    if wanted:
        rows = db.session.execute(
            select(
                CardShare.code,
                CardShare.session_id,
                CardShare.customer_id,
                CardShare.card_id,
                CardShare.content_id,
                CardShare.depth,
            ).where(CardShare.code.in_(wanted))
        ).all()
        for r in rows:
            cycle.shares[r.code] = ShareInfo(r.session_id, r.customer_id, r.card_id, r.content_id, r.depth)


def _valid_via(event: Ev, cycle: Cycle, content_id: int | None) -> str | None:
    """The share code a view arrived through, if it is a real share of this very target and
    not the visitor's own."""
    info = cycle.shares.get(event.code) if event.code else None
    if info is None or (info.card_id, info.content_id) != (event.card_id, content_id):
        return None
    if info.session_id == event.session_id or (info.customer_id and info.customer_id == event.customer_id):
        return None
    return event.code


def _open_visits(events: list[Ev], cycle: Cycle) -> None:
    earliest = min(e.occurred_at for e in events) - VISIT_GAP
    rows = db.session.execute(
        select(CardVisit.__table__).where(
            CardVisit.session_id.in_({e.session_id for e in events}),
            CardVisit.ended_at.is_(None),
            CardVisit.last_seen_at >= earliest,
        )
    )
    for row in rows:
        key = (row.session_id, row.card_id, row.content_id)
        known = cycle.visits.get(key)
        if known is None or known.last_seen_at < row.last_seen_at:
            cycle.visits[key] = VisitState(
                row.id,
                row.corp_id,
                row.card_id,
                row.content_id,
                row.session_id,
                row.customer_id,
                row.via_share_code,
                row.started_at,
                row.last_seen_at,
                row.ended_at,
                row.dwell_seconds,
            )


def _touch(cycle: Cycle, event: Ev, content_id: int | None, via: str | None, can_open: bool) -> VisitState | None:
    key = (event.session_id, event.card_id, content_id)
    visit = cycle.visits.get(key)
    t = event.occurred_at
    if visit is None or visit.ended_at is not None or t - visit.last_seen_at > VISIT_GAP:
        if not can_open:
            return None
        visit = VisitState(
            None, event.corp_id, event.card_id, content_id, event.session_id, event.customer_id, via, t, t, None, 0.0
        )
        cycle.visits[key] = visit
        cycle.new_visits.append(visit)
        return visit
    if t > visit.last_seen_at:
        visit.dwell_seconds += (t - visit.last_seen_at).total_seconds()
        visit.last_seen_at = t
    if via and not visit.via_share_code:
        visit.via_share_code = via
    if visit.customer_id is None and event.customer_id is not None:
        visit.customer_id = event.customer_id
    visit.dirty = True
    return visit


def _end(visit: VisitState | None, at: datetime) -> None:
    if visit is not None and visit.ended_at is None:
        visit.ended_at = max(at, visit.last_seen_at)
        visit.dirty = True


def _visits(events: list[Ev], cards: dict[int, tuple[int, int]], cycle: Cycle) -> None:
    """Walk each session's new events in time order: visits, dwell, contributions, presence."""
    _open_visits(events, cycle)
    weights = {}
    for event in sorted(events, key=lambda e: (e.session_id, e.occurred_at, e.order)):
        opening = event.type != _FREEZE
        via = _valid_via(event, cycle, None) if event.type == CardEventType.card_view else None
        card_visit = _touch(cycle, event, None, via, opening)
        if event.content_id is not None:
            content_via = (
                _valid_via(event, cycle, event.content_id) if event.type == CardEventType.content_view else None
            )
            content_visit = _touch(cycle, event, event.content_id, content_via, opening)
            if event.type == CardEventType.leave:
                _end(content_visit, event.occurred_at)
        elif event.type == CardEventType.leave:
            _end(card_visit, event.occurred_at)
            for (session_id, card_id, content_id), visit in cycle.visits.items():
                if session_id == event.session_id and card_id == event.card_id and content_id is not None:
                    _end(visit, event.occurred_at)
        staff_id = cards[event.card_id][1]
        if event.customer_id is not None:
            if event.corp_id not in weights:
                weights[event.corp_id] = intent.settings_for(event.corp_id).weights
            weight = weights[event.corp_id].get(event.type, 0.0)
            if weight:
                cycle.contributions[event.corp_id][(event.customer_id, staff_id)].append(
                    intent.Contribution(event.occurred_at, weight, str(event.type))
                )
            if event.type != CardEventType.heartbeat:
                cycle.activities.append(
                    Activity(
                        event.corp_id,
                        event.customer_id,
                        staff_id,
                        event.card_id,
                        event.content_id,
                        event.type,
                        event.occurred_at,
                    )
                )
        left_card = event.type == CardEventType.leave and event.content_id is None
        on_content = event.content_id if event.type != CardEventType.leave else None
        cycle.seen[(event.card_id, event.session_id)] = presence.Seen(
            event.card_id, event.session_id, event.customer_id, on_content, event.occurred_at.timestamp(), left_card
        )


def _earlier_arrivals(shares: list[Ev]) -> list:
    """Earlier visits, by the sharers (their sessions, or their customers once known), to the
    shared cards that came through a share: one query for the whole cycle."""
    if not shares:
        return []
    who = CardVisit.session_id.in_({e.session_id for e in shares})
    customers = {e.customer_id for e in shares if e.customer_id is not None}
    if customers:
        who = or_(who, CardVisit.customer_id.in_(customers))
    return db.session.execute(
        select(
            CardVisit.session_id,
            CardVisit.customer_id,
            CardVisit.card_id,
            CardVisit.content_id,
            CardVisit.via_share_code,
            CardVisit.started_at,
        )
        .where(CardVisit.card_id.in_({e.card_id for e in shares}), CardVisit.via_share_code.is_not(None), who)
        .order_by(CardVisit.started_at.desc())
    ).all()


def _parent(event: Ev, cycle: Cycle, earlier: list) -> str | None:
    """The share through which the sharer had come to this target: their current visit's, else
    their (or their customer's) latest earlier visit that came through one."""
    visit = cycle.visits.get((event.session_id, event.card_id, event.content_id))
    if visit is not None and visit.via_share_code:
        return visit.via_share_code
    for row in earlier:  # newest first
        mine = row.session_id == event.session_id or (
            event.customer_id is not None and row.customer_id == event.customer_id
        )
        same_target = (row.card_id, row.content_id) == (event.card_id, event.content_id)
        if mine and same_target and row.started_at <= event.occurred_at:
            return row.via_share_code
    return None


def _new_shares(events: list[Ev], cycle: Cycle) -> None:
    """Insert this cycle's shares, parents before children (time order), with their depth."""
    shares = sorted((e for e in events if e.type == CardEventType.share), key=lambda e: (e.occurred_at, e.order))
    earlier = _earlier_arrivals([e for e in shares if not _current_via(e, cycle)])
    parents = {e.code: _parent(e, cycle, earlier) for e in shares}
    unknown = {p for p in parents.values() if p and (p not in cycle.shares or cycle.shares[p].depth is None)}
    depths = {}
    if unknown:
        depths = dict(
            db.session.execute(select(CardShare.code, CardShare.depth).where(CardShare.code.in_(unknown))).all()
        )
    rows = []
    now = utcnow()
    for event in shares:
        parent = parents[event.code]
        if parent is None:
            depth = 1
        elif parent in cycle.shares and cycle.shares[parent].depth is not None:
            depth = cycle.shares[parent].depth + 1
        else:
            depth = depths.get(parent, 0) + 1
        cycle.shares[event.code].depth = depth
        rows.append(
            {
                "corp_id": event.corp_id,
                "code": event.code,
                "card_id": event.card_id,
                "content_id": event.content_id,
                "session_id": event.session_id,
                "customer_id": event.customer_id,
                "parent_code": parent,
                "depth": depth,
                "shared_at": event.occurred_at,
                "created_at": now,
                "updated_at": now,
            }
        )
    if rows:
        db.session.connection().execute(
            _dialect().insert(CardShare.__table__).on_conflict_do_nothing(index_elements=["code"]), rows
        )


def _current_via(event: Ev, cycle: Cycle) -> str | None:
    visit = cycle.visits.get((event.session_id, event.card_id, event.content_id))
    return visit.via_share_code if visit is not None else None


_VISIT_UPDATE = (
    update(CardVisit)
    .where(CardVisit.id == bindparam("b_id"))
    .values(
        customer_id=bindparam("b_customer_id"),
        via_share_code=bindparam("b_via"),
        last_seen_at=bindparam("b_last_seen_at"),
        ended_at=bindparam("b_ended_at"),
        dwell_seconds=bindparam("b_dwell"),
        updated_at=bindparam("b_now"),
    )
)


def _write_visits(cycle: Cycle) -> None:
    now = utcnow()
    if cycle.new_visits:
        db.session.connection().execute(
            CardVisit.__table__.insert(),
            [
                {
                    "corp_id": v.corp_id,
                    "card_id": v.card_id,
                    "content_id": v.content_id,
                    "session_id": v.session_id,
                    "customer_id": v.customer_id,
                    "via_share_code": v.via_share_code,
                    "started_at": v.started_at,
                    "last_seen_at": v.last_seen_at,
                    "ended_at": v.ended_at,
                    "dwell_seconds": v.dwell_seconds,
                    "created_at": now,
                    "updated_at": now,
                }
                for v in cycle.new_visits
            ],
        )
    changed = [v for v in cycle.visits.values() if v.id is not None and v.dirty]
    if changed:
        db.session.connection().execute(
            _VISIT_UPDATE,
            [
                {
                    "b_id": v.id,
                    "b_customer_id": v.customer_id,
                    "b_via": v.via_share_code,
                    "b_last_seen_at": v.last_seen_at,
                    "b_ended_at": v.ended_at,
                    "b_dwell": v.dwell_seconds,
                    "b_now": now,
                }
                for v in changed
            ],
        )


# -- re-attribution ---------------------------------------------------------------------------
def reattribute(corp_id: int, device_session_id: int, customer_id: int, scoring: intent.Scoring) -> int:
    """Give an anonymous device's events, visits and shares to ``customer_id`` and add its
    events to the customer's intent scores. Inside the caller's transaction, after the caller
    has claimed the session row (which serializes this with the drainer). Returns how many
    events moved."""
    moved = db.session.execute(
        update(CardEvent)
        .where(CardEvent.session_id == device_session_id, CardEvent.customer_id.is_(None))
        .values(customer_id=customer_id, updated_at=utcnow())
        .returning(CardEvent.type, CardEvent.card_id, CardEvent.occurred_at)
        .execution_options(synchronize_session=False)
    ).all()
    for model in (CardVisit, CardShare):
        db.session.execute(
            update(model)
            .where(model.session_id == device_session_id, model.customer_id.is_(None))
            .values(customer_id=customer_id, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    if moved:
        weights = intent.settings_for(corp_id).weights
        staff_of = dict(
            db.session.execute(select(Card.id, Card.staff_id).where(Card.id.in_({m.card_id for m in moved}))).all()
        )
        contributions: dict[tuple[int, int], list[intent.Contribution]] = defaultdict(list)
        for m in moved:
            weight = weights.get(m.type, 0.0)
            if weight:
                contributions[(customer_id, staff_of[m.card_id])].append(
                    intent.Contribution(m.occurred_at, weight, str(m.type))
                )
        intent.apply(corp_id, contributions, scoring)
    return len(moved)
