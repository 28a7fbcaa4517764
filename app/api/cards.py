"""/cards: business cards and their content (admins: every card; reps: their own), their
stats, forward trees and live presence; visits, intent scores and the intent settings."""

from app.api.routing import ApiBlueprint, current_principal
from app.schemas.card import (
    CardCreate,
    CardQuery,
    CardSchema,
    CardStatsSchema,
    CardUpdate,
    ContentCreate,
    ContentSchema,
    ContentStatsSchema,
    ContentUpdate,
    IntentQuery,
    IntentSchema,
    IntentSettingsSchema,
    LevelChangeSchema,
    LevelHistoryQuery,
    PresenceSchema,
    RangeQuery,
    ShareNodeSchema,
    ShareTreeQuery,
    StatsQuery,
    VisitQuery,
    VisitSchema,
)
from app.schemas.common import page_of
from app.services import cards, signals
from app.services.signals import stats

bp = ApiBlueprint("api_cards", __name__, tag="cards")
BOTH = ("admin", "rep")


@bp.operation("/cards", "GET", query=CardQuery, response=page_of(CardSchema), roles=BOTH)
def list_cards(query):
    """List the cards you may edit (a rep: their own)."""
    return cards.search(current_principal(), **query)


@bp.operation("/cards", "POST", body=CardCreate, response=CardSchema, status=201, roles=BOTH)
def create_card(body):
    """Create a rep's card; its mini-program contact way is made in the background."""
    return cards.create(current_principal(), body)


@bp.operation("/cards/<int:card_id>", "GET", response=CardSchema, roles=BOTH)
def get_card(card_id):
    """One card with its contact way's status."""
    return cards.get(current_principal(), card_id)


@bp.operation("/cards/<int:card_id>", "PATCH", body=CardUpdate, response=CardSchema, roles=BOTH)
def update_card(card_id, body):
    """Edit a card (archiving or restoring it is for admins)."""
    return cards.update(current_principal(), card_id, body)


@bp.operation("/cards/<int:card_id>", "DELETE")
def archive_card(card_id):
    """Archive a card: hidden from visitors, contact way deleted, history kept."""
    cards.archive(current_principal(), card_id)


@bp.operation("/cards/<int:card_id>/contact_way", "POST", response=CardSchema, roles=BOTH)
def retry_contact_way(card_id):
    """Try again to create the card's WeCom contact way."""
    return cards.retry_contact_way(current_principal(), card_id)


@bp.operation("/cards/<int:card_id>/contents", "GET", response=ContentSchema, many=True, roles=BOTH)
def list_contents(card_id):
    """The card's content items, in order."""
    return cards.contents(current_principal(), card_id)


@bp.operation(
    "/cards/<int:card_id>/contents", "POST", body=ContentCreate, response=ContentSchema, status=201, roles=BOTH
)
def add_content(card_id, body):
    """Add an article, product, file or video to the card."""
    return cards.add_content(current_principal(), card_id, body)


@bp.operation(
    "/cards/<int:card_id>/contents/<int:content_id>", "PATCH", body=ContentUpdate, response=ContentSchema, roles=BOTH
)
def update_content(card_id, content_id, body):
    """Edit a content item."""
    return cards.update_content(current_principal(), card_id, content_id, body)


@bp.operation("/cards/<int:card_id>/contents/<int:content_id>", "DELETE", roles=BOTH)
def archive_content(card_id, content_id):
    """Take a content item off the card (its history stays)."""
    cards.archive_content(current_principal(), card_id, content_id)


@bp.operation("/cards/<int:card_id>/stats", "GET", query=StatsQuery, response=CardStatsSchema, roles=BOTH)
def card_stats(card_id, query):
    """Views, unique visitors, average dwell, shares, forward depth and top content over a range."""
    return stats.card_stats(current_principal(), card_id, query.get("since"), query.get("until"), query["top"])


@bp.operation(
    "/cards/<int:card_id>/contents/<int:content_id>/stats",
    "GET",
    query=RangeQuery,
    response=ContentStatsSchema,
    roles=BOTH,
)
def content_stats(card_id, content_id, query):
    """The same figures for one content item."""
    return stats.content_stats(current_principal(), card_id, content_id, query.get("since"), query.get("until"))


@bp.operation("/cards/<int:card_id>/shares", "GET", query=ShareTreeQuery, response=page_of(ShareNodeSchema), roles=BOTH)
def share_tree(card_id, query):
    """The forward tree of the card (or of one item): who shared, through whom, whom it brought."""
    return stats.share_tree(current_principal(), card_id, **query)


@bp.operation("/cards/<int:card_id>/presence", "GET", response=PresenceSchema, many=True, roles=BOTH)
def presence(card_id):
    """Who is on the card right now."""
    return stats.who_is_here(current_principal(), card_id)


@bp.operation("/cards/visits", "GET", query=VisitQuery, response=page_of(VisitSchema), roles=BOTH)
def list_visits(query):
    """Card and content visits with dwell, newest first (filter by card or customer)."""
    return stats.visits(current_principal(), **query)


@bp.operation("/cards/intents", "GET", query=IntentQuery, response=page_of(IntentSchema), roles=BOTH)
def list_intents(query):
    """Intent scores per customer and rep, highest first, decayed to now."""
    return stats.intents(current_principal(), **query)


@bp.operation("/cards/intents/history", "GET", query=LevelHistoryQuery, response=page_of(LevelChangeSchema), roles=BOTH)
def level_history(query):
    """Intent level changes (cold/warm/hot), newest first."""
    return stats.level_history(current_principal(), **query)


@bp.operation("/cards/settings", "GET", response=IntentSettingsSchema)
def get_settings():
    """The corp's intent half-life, level thresholds and event weights."""
    return signals.settings_for(current_principal().corp_id)


@bp.operation("/cards/settings", "PATCH", body=IntentSettingsSchema, response=IntentSettingsSchema)
def update_settings(body):
    """Change the intent half-life, thresholds or weights."""
    principal = current_principal()
    return signals.update_settings(principal.corp_id, principal.actor, body)
