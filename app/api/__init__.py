"""The admin JSON API under /api/v1: one module per resource, declared operations."""

from __future__ import annotations

from flask import Flask

from app.api.routing import ApiBlueprint

API_PREFIX = "/api/v1"


def blueprints() -> list[ApiBlueprint]:
    from app.api import alerts, auth, cards, contact_codes, customers, handovers, identities, staff

    return [auth.bp, staff.bp, customers.bp, contact_codes.bp, identities.bp, cards.bp, handovers.bp, alerts.bp]


def documented() -> list[tuple[str, ApiBlueprint]]:
    """Every declared blueprint with its URL prefix: what /api/v1/openapi.json describes."""
    from miniprogram_api import MP_PREFIX
    from miniprogram_api.views import bp as miniprogram

    return [(API_PREFIX, bp) for bp in blueprints()] + [(MP_PREFIX, miniprogram)]


def init_app(app: Flask) -> None:
    from app.api import openapi

    for bp in blueprints():
        app.register_blueprint(bp, url_prefix=API_PREFIX)
    app.register_blueprint(openapi.bp, url_prefix=API_PREFIX)
