"""Sidebar request and response schemas (validation and shaping only). Note and tag bodies use
the 360 view's own schemas (``app.schemas.note``)."""

from __future__ import annotations

from datetime import date, datetime

from marshmallow import Schema, fields, validate

MAX_URL = 2048


class JssdkQuery(Schema):
    """The page asking for signatures: its full address (the fragment is ignored)."""

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=MAX_URL))


class NoteOutSchema(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    body = fields.String()
    author_user_id = fields.Integer(allow_none=True)
    author_staff_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TagOutSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    group = fields.String(attribute="group_name")


def as_json(value):
    """The 360 view (plain dicts) as JSON-ready data: timestamps in ISO 8601, as the API's
    schemas give them (Flask's default would be an HTTP date)."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
