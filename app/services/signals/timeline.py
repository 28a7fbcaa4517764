"""Card signals on the customer's unified timeline (``app.services.timeline``): their visits to
cards and content (with dwell), their shares (with the forward depth) and their intent level
changes, each tagged with the card's rep so a rep sees only the entries about them."""

from __future__ import annotations

from sqlalchemy import Integer, Select, String, case, cast, func, literal, select

from app.models import Card, CardShare, CardVisit, ContentItem, IntentLevelChange
from app.services import timeline


def _null_str():
    return cast(None, String)


@timeline.source("card_visit")
def _visits(corp_id: int, customer_ids: list[int]) -> Select:
    """A visit to a rep's card (kind ``card_visit``) or to one of its items (``content_visit``);
    detail: the item's title or the card's name, and the dwell in seconds."""
    seconds = cast(cast(func.round(CardVisit.dwell_seconds), Integer), String)
    title = func.coalesce(ContentItem.title, Card.display_name)
    return (
        select(
            CardVisit.started_at.label("at"),
            case((CardVisit.content_id.is_(None), "card_visit"), else_="content_visit").label("kind"),
            CardVisit.customer_id.label("customer_id"),
            Card.staff_id.label("staff_id"),
            literal("card_visit", String).label("ref_type"),
            CardVisit.id.label("ref_id"),
            (title + literal(" · ", String) + seconds + literal(" s", String)).label("detail"),
            _null_str().label("actor"),
        )
        .join(Card, Card.id == CardVisit.card_id)
        .outerjoin(ContentItem, ContentItem.id == CardVisit.content_id)
        .where(CardVisit.corp_id == corp_id, CardVisit.customer_id.in_(customer_ids))
    )


@timeline.source("card_share")
def _shares(corp_id: int, customer_ids: list[int]) -> Select:
    """The customer forwarded a card or item; detail: its title and forward depth."""
    title = func.coalesce(ContentItem.title, Card.display_name)
    return (
        select(
            CardShare.shared_at.label("at"),
            literal("card_share", String).label("kind"),
            CardShare.customer_id.label("customer_id"),
            Card.staff_id.label("staff_id"),
            literal("card_share", String).label("ref_type"),
            CardShare.id.label("ref_id"),
            (title + literal(" · depth ", String) + cast(CardShare.depth, String)).label("detail"),
            _null_str().label("actor"),
        )
        .join(Card, Card.id == CardShare.card_id)
        .outerjoin(ContentItem, ContentItem.id == CardShare.content_id)
        .where(CardShare.corp_id == corp_id, CardShare.customer_id.in_(customer_ids))
    )


@timeline.source("intent_level")
def _levels(corp_id: int, customer_ids: list[int]) -> Select:
    """The customer's intent towards a rep moved (detail: ``warm→hot (add_wecom)``)."""
    return select(
        IntentLevelChange.changed_at.label("at"),
        literal("intent_level", String).label("kind"),
        IntentLevelChange.customer_id.label("customer_id"),
        IntentLevelChange.staff_id.label("staff_id"),
        literal("intent_level_change", String).label("ref_type"),
        IntentLevelChange.id.label("ref_id"),
        (
            cast(IntentLevelChange.from_level, String)
            + literal("→", String)
            + cast(IntentLevelChange.to_level, String)
            + literal(" (", String)
            + IntentLevelChange.cause
            + literal(")", String)
        ).label("detail"),
        _null_str().label("actor"),
    ).where(IntentLevelChange.corp_id == corp_id, IntentLevelChange.customer_id.in_(customer_ids))
