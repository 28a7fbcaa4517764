"""What the signals become, read back: card and content stats over a date range, forward trees,
visit timelines, intent scores and their level history, live presence. Every read goes through
the card visibility of ``app.services.cards`` (admins: the corp; reps: their own card)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, distinct, func, select

from app.errors import NotFound
from app.extensions import db
from app.models import (
    Card,
    CardShare,
    CardVisit,
    ContentItem,
    Customer,
    IntentLevel,
    IntentLevelChange,
    IntentScore,
    Staff,
    utcnow,
)
from app.schemas.common import Page
from app.services import cards
from app.services.auth import Principal
from app.services.paging import paginate
from app.services.signals import intent, presence

DEFAULT_RANGE = timedelta(days=30)


@dataclass
class TargetStats:
    content_id: int | None
    title: str
    views: int
    unique_visitors: int
    avg_dwell_seconds: float
    shares: int
    forward_depth: int


def _range(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or utcnow()
    return since or until - DEFAULT_RANGE, until


def _visit_figures(card_id: int, since: datetime, until: datetime) -> dict[int | None, tuple[int, int, float]]:
    """{content_id (None = the card itself): (views, unique visitors, average dwell)} for the
    visits started in the range; one query for the card and all its items."""
    unique = func.count(distinct(CardVisit.customer_id)) + func.count(
        distinct(case((CardVisit.customer_id.is_(None), CardVisit.session_id)))
    )
    rows = db.session.execute(
        select(CardVisit.content_id, func.count(), unique, func.coalesce(func.avg(CardVisit.dwell_seconds), 0.0))
        .where(CardVisit.card_id == card_id, CardVisit.started_at >= since, CardVisit.started_at < until)
        .group_by(CardVisit.content_id)
    )
    return {row[0]: (row[1], row[2], float(row[3])) for row in rows}


def _share_figures(card_id: int, since: datetime, until: datetime) -> dict[int | None, tuple[int, int]]:
    """{content_id (None = the card itself): (shares, deepest forward level)} in the range."""
    rows = db.session.execute(
        select(CardShare.content_id, func.count(), func.max(CardShare.depth))
        .where(CardShare.card_id == card_id, CardShare.shared_at >= since, CardShare.shared_at < until)
        .group_by(CardShare.content_id)
    )
    return {row[0]: (row[1], row[2] or 0) for row in rows}


def card_stats(
    principal: Principal, card_id: int, since: datetime | None, until: datetime | None, top: int = 10
) -> dict:
    """Views, unique visitors, average dwell, shares (of the card and its content), the deepest
    forward chain, and the top content by views, for visits started in [since, until)."""
    card = cards.get(principal, card_id)
    since, until = _range(since, until)
    figures = _visit_figures(card.id, since, until)
    views, unique, dwell = figures.pop(None, (0, 0, 0.0))
    shares = _share_figures(card.id, since, until)
    per_content = figures
    titles = dict(
        db.session.execute(select(ContentItem.id, ContentItem.title).where(ContentItem.card_id == card.id)).all()
    )
    ranked = sorted(per_content.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
    return {
        "card_id": card.id,
        "since": since,
        "until": until,
        "views": views,
        "unique_visitors": unique,
        "avg_dwell_seconds": round(dwell, 1),
        "shares": sum(count for count, _ in shares.values()),
        "forward_depth": max((depth for _, depth in shares.values()), default=0),
        "top_content": [
            TargetStats(cid, titles.get(cid, ""), v, u, round(d, 1), *shares.get(cid, (0, 0)))
            for cid, (v, u, d) in ranked
        ],
    }


def content_stats(
    principal: Principal, card_id: int, content_id: int, since: datetime | None, until: datetime | None
) -> dict:
    """The same figures for one content item of a card."""
    card = cards.get(principal, card_id)
    item = db.session.get(ContentItem, content_id)
    if item is None or item.card_id != card.id:
        raise NotFound("content item")
    since, until = _range(since, until)
    views, unique, dwell = _visit_figures(card.id, since, until).get(item.id, (0, 0, 0.0))
    shares, depth = _share_figures(card.id, since, until).get(item.id, (0, 0))
    return {
        "card_id": card.id,
        "since": since,
        "until": until,
        **TargetStats(item.id, item.title, views, unique, round(dwell, 1), shares, depth).__dict__,
    }


def share_tree(principal: Principal, card_id: int, *, page: int, per_page: int, content_id: int | None = None) -> Page:
    """The forward tree of a card (or one of its items): each share with its parent, depth,
    sharer and how many visits and visitors it brought. Roots first."""
    card = cards.get(principal, card_id)
    visits = (
        select(
            CardVisit.via_share_code.label("code"),
            func.count().label("visits"),
            func.count(distinct(func.coalesce(CardVisit.customer_id, -CardVisit.session_id))).label("visitors"),
        )
        .where(CardVisit.card_id == card.id, CardVisit.via_share_code.is_not(None))
        .group_by(CardVisit.via_share_code)
        .subquery()
    )
    target = CardShare.content_id == content_id if content_id is not None else CardShare.content_id.is_(None)
    stmt = (
        select(
            *_share_columns(),
            func.coalesce(visits.c.visits, 0).label("visits"),
            func.coalesce(visits.c.visitors, 0).label("visitors"),
        )
        .outerjoin(visits, visits.c.code == CardShare.code)
        .outerjoin(Customer, Customer.id == CardShare.customer_id)
        .where(CardShare.card_id == card.id, target)
    )
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.execute(
        stmt.order_by(CardShare.depth, CardShare.shared_at, CardShare.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(items=[row._asdict() for row in rows], total=total, page=page, per_page=per_page)


def visits(
    principal: Principal, *, page: int, per_page: int, card_id: int | None = None, customer_id: int | None = None
) -> Page:
    """Visits to the cards ``principal`` may see, newest first (the timeline of a customer)."""
    stmt = select(CardVisit).where(CardVisit.card_id.in_(cards.visible(principal).with_only_columns(Card.id)))
    if card_id is not None:
        stmt = stmt.where(CardVisit.card_id == card_id)
    if customer_id is not None:
        stmt = stmt.where(CardVisit.customer_id == customer_id)
    return paginate(stmt, page, per_page, CardVisit.started_at.desc(), CardVisit.id.desc())


def _intent_scope(principal: Principal, model, customer_id: int | None, staff_id: int | None):
    stmt = select(model).where(model.corp_id == principal.corp_id)
    if not principal.is_admin:
        stmt = stmt.where(model.staff_id == (principal.staff_id or -1))
    if customer_id is not None:
        stmt = stmt.where(model.customer_id == customer_id)
    if staff_id is not None:
        stmt = stmt.where(model.staff_id == staff_id)
    return stmt


def intents(
    principal: Principal,
    *,
    page: int,
    per_page: int,
    customer_id: int | None = None,
    staff_id: int | None = None,
    level: IntentLevel | None = None,
) -> Page:
    """Intent scores (a rep: towards them), highest first. ``score`` and ``level`` are decayed
    to now; the ``level`` filter uses the stored level, which the periodic settle keeps true."""
    stmt = _intent_scope(principal, IntentScore, customer_id, staff_id)
    if level is not None:
        stmt = stmt.where(IntentScore.level == level)
    result = paginate(stmt, page, per_page, IntentScore.score.desc(), IntentScore.id)
    settings = intent.settings_for(principal.corp_id)
    names = _names(Customer, {r.customer_id for r in result.items})
    userids = _names(Staff, {r.staff_id for r in result.items}, Staff.userid)
    now = utcnow()
    items = []
    for row in result.items:
        score, current_level = intent.current(row, settings, now)
        items.append(
            {
                "customer_id": row.customer_id,
                "customer_name": names.get(row.customer_id, ""),
                "staff_id": row.staff_id,
                "staff_userid": userids.get(row.staff_id, ""),
                "score": round(score, 2),
                "level": current_level,
                "level_since": row.level_since if current_level == row.level else None,
                "last_event_at": row.last_event_at,
                "events": row.events,
            }
        )
    result.items = items
    return result


def level_history(
    principal: Principal, *, page: int, per_page: int, customer_id: int | None = None, staff_id: int | None = None
) -> Page:
    """Level changes, newest first."""
    stmt = _intent_scope(principal, IntentLevelChange, customer_id, staff_id)
    return paginate(stmt, page, per_page, IntentLevelChange.changed_at.desc(), IntentLevelChange.id.desc())


def _names(model, ids: set[int], column=None) -> dict[int, str]:
    if not ids:
        return {}
    column = column if column is not None else model.name
    return dict(db.session.execute(select(model.id, column).where(model.id.in_(ids))).all())


def who_is_here(principal: Principal, card_id: int) -> list[dict]:
    """Who is on the card right now (the sidebar's live view), with customer names."""
    card = cards.get(principal, card_id)
    here = presence.on_card(card.id)
    names = _names(Customer, {p["customer_id"] for p in here if p["customer_id"]})
    for item in here:
        item["customer_name"] = names.get(item["customer_id"], "") if item["customer_id"] else ""
    return here


def _share_columns() -> tuple:
    """What a share reads as (forward trees and chains alike); the caller outer-joins Customer."""
    return (
        CardShare.code,
        CardShare.parent_code,
        CardShare.depth,
        CardShare.content_id,
        CardShare.customer_id,
        Customer.name.label("customer_name"),
        CardShare.shared_at,
    )


def share_chains(corp_id: int, codes: set[str]) -> dict[str, list[dict]]:
    """The forward chain behind each share code: {code: [that share, its parent, …, the root
    share]}, each {code, parent_code, depth, content_id, customer_id, customer_name, shared_at}.
    One query per forward level, never more than the deepest chain."""
    shares: dict[str, dict] = {}
    wanted = {c for c in codes if c}
    while wanted:
        rows = db.session.execute(
            select(*_share_columns())
            .outerjoin(Customer, Customer.id == CardShare.customer_id)
            .where(CardShare.corp_id == corp_id, CardShare.code.in_(wanted))
        ).all()
        for row in rows:
            shares[row.code] = row._asdict()
        wanted = {row.parent_code for row in rows if row.parent_code and row.parent_code not in shares}
    chains: dict[str, list[dict]] = {}
    for start in codes:
        chain, code = [], start
        # Each parent is one level shallower, so the walk ends at the root.
        while code in shares and (not chain or shares[code]["depth"] < chain[-1]["depth"]):
            chain.append(shares[code])
            code = shares[code]["parent_code"]
        chains[start] = chain
    return chains
