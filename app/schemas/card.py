"""Cards, content, stats, forward trees, visits, intent and presence in the admin API."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.models import CardEventType, ContactWayStatus, ContentKind, IntentLevel
from app.schemas.common import PageQuery

_URL = validate.Length(max=512)
_PHONE = validate.Regexp(r"^[0-9+\- ()]{0,32}$", error="digits, spaces and +-() only")


class CardQuery(PageQuery):
    staff_id = fields.Integer(metadata={"description": "the rep's staff id"})
    active = fields.Boolean()


class CardFields(Schema):
    display_name = fields.String(validate=validate.Length(min=1, max=64))
    title = fields.String(validate=validate.Length(max=64))
    company = fields.String(validate=validate.Length(max=128))
    avatar = fields.Url(validate=_URL)
    phone = fields.String(validate=_PHONE)
    email = fields.Email(validate=validate.Length(max=128))
    wechat = fields.String(validate=validate.Length(max=64))
    intro = fields.String(validate=validate.Length(max=2000))


class CardCreate(CardFields):
    staff_id = fields.Integer(metadata={"description": "required for an admin; a rep's own card otherwise"})


class CardUpdate(CardFields):
    active = fields.Boolean(metadata={"description": "false archives the card, true restores it"})


class ContactWaySchema(Schema):
    config_id = fields.String(attribute="contact_way_config_id", allow_none=True)
    state = fields.String(attribute="contact_way_state")
    status = fields.Enum(ContactWayStatus, attribute="contact_way_status")
    error = fields.String(attribute="contact_way_error", allow_none=True)


class CardSchema(CardFields):
    id = fields.Integer()
    staff_id = fields.Integer()
    staff_userid = fields.String(attribute="staff.userid")
    active = fields.Boolean()
    contact_way = fields.Function(lambda card: ContactWaySchema().dump(card))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ContentCreate(Schema):
    kind = fields.Enum(ContentKind, required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=128))
    cover = fields.Url(validate=_URL)
    url = fields.Url(required=True, validate=validate.Length(max=1024))
    position = fields.Integer(validate=validate.Range(min=0, max=10_000))


class ContentUpdate(Schema):
    kind = fields.Enum(ContentKind)
    title = fields.String(validate=validate.Length(min=1, max=128))
    cover = fields.Url(validate=_URL)
    url = fields.Url(validate=validate.Length(max=1024))
    position = fields.Integer(validate=validate.Range(min=0, max=10_000))


class ContentSchema(ContentCreate):
    id = fields.Integer()
    card_id = fields.Integer()
    created_at = fields.DateTime()


class RangeQuery(Schema):
    since = fields.AwareDateTime(default_timezone=UTC, metadata={"description": "default: until − 30 days"})
    until = fields.AwareDateTime(default_timezone=UTC, metadata={"description": "default: now"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("must be before until", "since")


class StatsQuery(RangeQuery):
    top = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


class TargetStatsSchema(Schema):
    content_id = fields.Integer(allow_none=True)
    title = fields.String()
    views = fields.Integer()
    unique_visitors = fields.Integer()
    avg_dwell_seconds = fields.Float()
    shares = fields.Integer()
    forward_depth = fields.Integer(metadata={"description": "the longest chain of forwards (1 = shared once)"})


class CardStatsSchema(Schema):
    card_id = fields.Integer()
    since = fields.DateTime()
    until = fields.DateTime()
    views = fields.Integer()
    unique_visitors = fields.Integer()
    avg_dwell_seconds = fields.Float()
    shares = fields.Integer(metadata={"description": "shares of the card and of its content"})
    forward_depth = fields.Integer()
    top_content = fields.List(fields.Nested(TargetStatsSchema))


class ContentStatsSchema(TargetStatsSchema):
    card_id = fields.Integer()
    since = fields.DateTime()
    until = fields.DateTime()


class ShareTreeQuery(PageQuery):
    content_id = fields.Integer(metadata={"description": "an item's tree; default the card's own"})


class ShareNodeSchema(Schema):
    code = fields.String(metadata={"description": "the share id"})
    parent_code = fields.String(allow_none=True)
    depth = fields.Integer()
    content_id = fields.Integer(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    customer_name = fields.String(allow_none=True)
    shared_at = fields.DateTime()
    visits = fields.Integer()
    visitors = fields.Integer()


class VisitQuery(PageQuery):
    card_id = fields.Integer()
    customer_id = fields.Integer()


class VisitSchema(Schema):
    id = fields.Integer()
    card_id = fields.Integer()
    content_id = fields.Integer(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    via_share_code = fields.String(allow_none=True)
    started_at = fields.DateTime()
    last_seen_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    dwell_seconds = fields.Float()


class IntentQuery(PageQuery):
    customer_id = fields.Integer()
    staff_id = fields.Integer()
    level = fields.Enum(IntentLevel)


class IntentSchema(Schema):
    customer_id = fields.Integer()
    customer_name = fields.String()
    staff_id = fields.Integer()
    staff_userid = fields.String()
    score = fields.Float(metadata={"description": "decayed to now"})
    level = fields.Enum(IntentLevel, metadata={"description": "the level of the decayed score"})
    level_since = fields.DateTime(allow_none=True, metadata={"description": "null: fell since the last settle"})
    last_event_at = fields.DateTime()
    events = fields.Integer()


class LevelHistoryQuery(PageQuery):
    customer_id = fields.Integer()
    staff_id = fields.Integer()


class LevelChangeSchema(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    staff_id = fields.Integer()
    from_level = fields.Enum(IntentLevel)
    to_level = fields.Enum(IntentLevel)
    score = fields.Float()
    cause = fields.String()
    changed_at = fields.DateTime()


class IntentSettingsSchema(Schema):
    half_life_hours = fields.Float(validate=validate.Range(min=0.1, max=24 * 365))
    warm = fields.Float(validate=validate.Range(min=0.01))
    hot = fields.Float(validate=validate.Range(min=0.01))
    weights = fields.Dict(
        keys=fields.String(validate=validate.OneOf([t.value for t in CardEventType])),
        values=fields.Float(validate=validate.Range(min=0, max=1000)),
    )


class PresenceSchema(Schema):
    session_id = fields.Integer()
    customer_id = fields.Integer(allow_none=True)
    customer_name = fields.String()
    content_id = fields.Integer(allow_none=True)
    until = fields.Float(metadata={"description": "epoch seconds when this presence lapses without a heartbeat"})
