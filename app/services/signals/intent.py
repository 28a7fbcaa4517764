"""Intent score: weighted card events, decaying exponentially, per customer and rep.

A row keeps ``score`` as of ``as_of``; the value at any later time t is
``score * 0.5 ** ((t - as_of) / half_life)``. An event at t adds its weight: the row is first
decayed to t (or, for a late event, the weight is decayed to ``as_of``). Levels are thresholds
on the score; every move is recorded in IntentLevelChange at the moment it happens — a rise at
the event that caused it, a fall at the exact time the decaying score crossed the threshold —
and handed to the LEVEL_CHANGE_HOOKS after the transaction commits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from app.errors import ApiError
from app.extensions import db
from app.models import Corp, IntentLevel, IntentLevelChange, IntentScore, utcnow
from app.services.merge import register_fold

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS: dict[str, float] = {
    "card_view": 1.0,
    "content_view": 2.0,
    "heartbeat": 0.1,  # one every few seconds: a minute of reading is worth about a view
    "leave": 0.0,
    "share": 5.0,
    "click_phone": 8.0,
    "copy_wechat": 6.0,
    "save_contact": 6.0,
    "add_wecom": 10.0,
}
DEFAULTS = {"half_life_hours": 72.0, "warm": 10.0, "hot": 30.0}
_ORDER = [IntentLevel.cold, IntentLevel.warm, IntentLevel.hot]


@dataclass(frozen=True)
class IntentSettings:
    half_life_hours: float
    warm: float
    hot: float
    weights: dict[str, float]

    def level(self, score: float) -> IntentLevel:
        if score >= self.hot:
            return IntentLevel.hot
        return IntentLevel.warm if score >= self.warm else IntentLevel.cold

    def threshold(self, level: IntentLevel) -> float:
        """The score below which ``level`` is left."""
        return self.hot if level == IntentLevel.hot else self.warm

    def decayed(self, score: float, seconds: float) -> float:
        return score * 0.5 ** (max(seconds, 0.0) / (self.half_life_hours * 3600))


@dataclass(frozen=True)
class LevelChange:
    """What LEVEL_CHANGE_HOOKS receive, after the change is committed."""

    change_id: int
    corp_id: int
    customer_id: int
    staff_id: int
    from_level: IntentLevel
    to_level: IntentLevel
    score: float
    cause: str
    changed_at: datetime

    @property
    def is_rise(self) -> bool:
        return _ORDER.index(self.to_level) > _ORDER.index(self.from_level)


# Called with each committed LevelChange (rises and falls); exceptions are logged, never raised.
LEVEL_CHANGE_HOOKS: list[Callable[[LevelChange], None]] = []


def on_level_change(hook: Callable[[LevelChange], None]) -> Callable[[LevelChange], None]:
    """Register ``hook`` to be called after every committed level change (usable as a decorator)."""
    LEVEL_CHANGE_HOOKS.append(hook)
    return hook


def settings_for(corp_id: int) -> IntentSettings:
    """The corp's intent settings (``Corp.settings["cards"]``) over the defaults."""
    stored = (db.session.get(Corp, corp_id).settings or {}).get("cards", {})
    return IntentSettings(
        half_life_hours=float(stored.get("half_life_hours", DEFAULTS["half_life_hours"])),
        warm=float(stored.get("warm", DEFAULTS["warm"])),
        hot=float(stored.get("hot", DEFAULTS["hot"])),
        weights={**DEFAULT_WEIGHTS, **stored.get("weights", {})},
    )


def update_settings(corp_id: int, actor: str, changes: dict) -> IntentSettings:
    """Change the corp's half-life, thresholds or weights; audited. Scores keep their stored
    value and decay with the new half-life from their ``as_of``."""
    from app.services import audit

    current = settings_for(corp_id)
    merged = {
        "half_life_hours": changes.get("half_life_hours", current.half_life_hours),
        "warm": changes.get("warm", current.warm),
        "hot": changes.get("hot", current.hot),
        "weights": {**current.weights, **changes.get("weights", {})},
    }
    if merged["hot"] <= merged["warm"]:
        raise ApiError(422, "validation_error", "hot must be above warm", {"hot": ["must be greater than warm"]})
    corp = db.session.get(Corp, corp_id)
    corp.settings = {**(corp.settings or {}), "cards": merged}
    audit.record(corp_id, actor, "cards.intent_settings", "corp", corp_id, data=merged)
    db.session.commit()
    return settings_for(corp_id)


@dataclass(order=True)
class Contribution:
    """One event's part of a score: ``weight`` at time ``at``."""

    at: datetime
    weight: float = field(compare=False)
    cause: str = field(compare=False)


@dataclass
class Scoring:
    """The level changes a transaction produced: rows while it runs, frozen into LevelChange
    values once flushed (so nothing reloads them after the commit); ``notify()`` after commit."""

    rows: list[IntentLevelChange] = field(default_factory=list)
    changes: list[LevelChange] = field(default_factory=list)

    def freeze(self) -> None:
        """Snapshot the flushed rows (they have ids now)."""
        for row in self.rows:
            self.changes.append(
                LevelChange(
                    row.id,
                    row.corp_id,
                    row.customer_id,
                    row.staff_id,
                    row.from_level,
                    row.to_level,
                    row.score,
                    row.cause,
                    row.changed_at,
                )
            )
        self.rows = []

    def notify(self) -> None:
        for change in self.changes:
            for hook in list(LEVEL_CHANGE_HOOKS):
                try:
                    hook(change)
                except Exception:  # one subscriber's bug must not stop the others or ingestion
                    log.exception("level change hook %r failed", hook)


def apply(corp_id: int, contributions: dict[tuple[int, int], list[Contribution]], scoring: Scoring) -> None:
    """Add contributions keyed by (customer_id, staff_id) to their rows, inside the caller's
    transaction (rows locked FOR UPDATE, so concurrent writers serialize per row)."""
    contributions = {key: items for key, items in contributions.items() if items}
    if not contributions:
        return
    settings = settings_for(corp_id)
    rows = _lock_rows(corp_id, contributions)
    for key, items in contributions.items():
        row = rows[key]
        for item in sorted(items):
            _add(row, item, settings, scoring)
    db.session.flush()
    scoring.freeze()


def _lock_rows(corp_id: int, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], IntentScore]:
    keys = list(keys)
    now = utcnow()
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    # Create missing rows first, ignoring ones a concurrent transaction just made; then lock all.
    db.session.execute(
        dialect.insert(IntentScore)
        .values(
            [
                {
                    "corp_id": corp_id,
                    "customer_id": customer_id,
                    "staff_id": staff_id,
                    "score": 0.0,
                    "as_of": now,
                    "level": IntentLevel.cold,
                    "level_since": now,
                    "last_event_at": now,
                    "events": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for customer_id, staff_id in keys
            ]
        )
        .on_conflict_do_nothing(index_elements=["corp_id", "customer_id", "staff_id"])
    )
    rows = db.session.scalars(
        select(IntentScore)
        .where(IntentScore.corp_id == corp_id, tuple_(IntentScore.customer_id, IntentScore.staff_id).in_(keys))
        .order_by(IntentScore.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {(r.customer_id, r.staff_id): r for r in rows}


def _record(row: IntentScore, to_level: IntentLevel, score: float, cause: str, at: datetime, scoring: Scoring):
    change = IntentLevelChange(
        corp_id=row.corp_id,
        customer_id=row.customer_id,
        staff_id=row.staff_id,
        from_level=row.level,
        to_level=to_level,
        score=round(score, 4),
        cause=cause,
        changed_at=at,
    )
    db.session.add(change)
    scoring.rows.append(change)
    row.level, row.level_since = to_level, at


def _advance(row: IntentScore, to: datetime, settings: IntentSettings, scoring: Scoring) -> None:
    """Decay ``row`` to time ``to``, recording each fall at the moment the score crossed."""
    if to <= row.as_of:
        return
    while row.level != IntentLevel.cold:
        threshold = settings.threshold(row.level)
        crossing = row.as_of
        if row.score > threshold > 0:
            crossing += timedelta(hours=settings.half_life_hours * math.log2(row.score / threshold))
        if crossing >= to:
            break
        lower = _ORDER[_ORDER.index(row.level) - 1]
        row.score = settings.decayed(row.score, (crossing - row.as_of).total_seconds())
        row.as_of = crossing
        _record(row, lower, row.score, "decay", crossing, scoring)
    row.score = settings.decayed(row.score, (to - row.as_of).total_seconds())
    row.as_of = to


def _add(row: IntentScore, item: Contribution, settings: IntentSettings, scoring: Scoring) -> None:
    if row.events == 0:  # a fresh row starts at its first event, not when it was inserted
        row.as_of = row.level_since = row.last_event_at = item.at
    row.events += 1
    row.last_event_at = max(row.last_event_at, item.at)
    if item.at > row.as_of:
        _advance(row, item.at, settings, scoring)
        row.score += item.weight
    else:
        row.score += settings.decayed(item.weight, (row.as_of - item.at).total_seconds())
    level = settings.level(row.score)
    if level != row.level:
        _record(row, level, row.score, item.cause, row.as_of, scoring)


def current(row: IntentScore, settings: IntentSettings, now: datetime | None = None) -> tuple[float, IntentLevel]:
    """The row's score and level now (decayed on read; nothing is written)."""
    now = now or utcnow()
    score = settings.decayed(row.score, (now - row.as_of).total_seconds()) if now > row.as_of else row.score
    return score, settings.level(score)


def settle(batch: int = 500) -> int:
    """Record the falls of warm/hot rows whose decayed score has crossed a threshold by now, so
    stored levels (and queries on them) stay true without new events. Periodic; returns how
    many changes it recorded."""
    now = utcnow()
    scoring = Scoring()
    corp_ids = db.session.scalars(
        select(IntentScore.corp_id).where(IntentScore.level != IntentLevel.cold).distinct()
    ).all()
    for corp_id in corp_ids:
        settings = settings_for(corp_id)
        last_id = 0
        while True:
            rows = db.session.scalars(
                select(IntentScore)
                .where(IntentScore.corp_id == corp_id, IntentScore.level != IntentLevel.cold, IntentScore.id > last_id)
                .order_by(IntentScore.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                break
            for row in rows:
                if current(row, settings, now)[1] != row.level:
                    _advance(row, now, settings, scoring)
            last_id = rows[-1].id
            db.session.flush()
            scoring.freeze()
            db.session.commit()
    scoring.notify()
    return len(scoring.changes)


def settle_job() -> int:
    """RQ entry point of :func:`settle`."""
    return settle()


# -- OneID merges ---------------------------------------------------------------------------
_FOLDED = ("score", "as_of", "level", "level_since", "last_event_at", "events")


def _fold_scores(corp_id: int, absorbed_pk: tuple, survivor_pk: tuple) -> dict:
    """Merge fold (both customers scored towards one rep): the survivor's score becomes the sum
    of both, decayed to the later ``as_of``; a level this raises is recorded with cause
    ``merge``. Returns what ``_unfold_scores`` needs to put the survivor's row back."""
    mine, theirs = db.session.get(IntentScore, survivor_pk[0]), db.session.get(IntentScore, absorbed_pk[0])
    settings = settings_for(corp_id)
    before = {name: getattr(mine, name) for name in _FOLDED}
    at = max(mine.as_of, theirs.as_of)
    mine.score = settings.decayed(mine.score, (at - mine.as_of).total_seconds()) + settings.decayed(
        theirs.score, (at - theirs.as_of).total_seconds()
    )
    mine.as_of = at
    mine.events += theirs.events
    mine.last_event_at = max(mine.last_event_at, theirs.last_event_at)
    level = settings.level(mine.score)
    if level != mine.level:
        _record(mine, level, mine.score, "merge", at, Scoring())
    after = {name: getattr(mine, name) for name in _FOLDED}
    return {"before": _encode(before), "after": _encode(after)}


def _unfold_scores(corp_id: int, survivor_pk: tuple, undo: dict) -> None:
    mine = db.session.get(IntentScore, survivor_pk[0])
    if mine is None or _encode({name: getattr(mine, name) for name in _FOLDED}) != undo["after"]:
        return  # the survivor's row moved on since the merge: its newer state wins
    for name, value in undo["before"].items():
        if name in ("as_of", "level_since", "last_event_at"):
            value = datetime.fromisoformat(value)
        elif name == "level":
            value = IntentLevel(value)
        setattr(mine, name, value)


def _encode(values: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, datetime) else str(v) if k == "level" else v for k, v in values.items()}


register_fold(IntentScore.__tablename__, _fold_scores, _unfold_scores)
