"""The mini-program API's requests and answers (validation and shaping only)."""

from __future__ import annotations

import time

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.models import CardEventType, ContentKind, SessionKind

MAX_EVENTS = 50
# Client clocks drift and pages buffer events while offline, but not by days.
MAX_PAST_SECONDS = 24 * 3600
MAX_FUTURE_SECONDS = 300
_CLIENT_ID = validate.Regexp(r"^[A-Za-z0-9_.:-]{1,64}$", error="1-64 letters, digits or _.:-")
_SHARE_ID = validate.Regexp(r"^[a-z2-7]{20}$", error="not a share id")
_NEEDS_CONTENT = {CardEventType.content_view}


class SessionRequest(Schema):
    code = fields.String(
        required=True, validate=validate.Length(min=1, max=128), metadata={"description": "the wx.login code"}
    )
    device_token = fields.String(
        validate=validate.Length(min=1, max=128),
        metadata={"description": "the anonymous device token, whose history is claimed"},
    )


class SessionSchema(Schema):
    token = fields.String()
    expires_at = fields.DateTime()
    kind = fields.Enum(SessionKind)
    phone_verified = fields.Boolean()
    device_claimed = fields.Boolean()


class PhoneRequest(Schema):
    code = fields.String(
        required=True, validate=validate.Length(min=1, max=128), metadata={"description": "the getPhoneNumber code"}
    )


class PhoneSchema(Schema):
    phone = fields.String(metadata={"description": "masked"})
    verified = fields.Boolean()


class MpContentSchema(Schema):
    id = fields.Integer()
    kind = fields.Enum(ContentKind)
    title = fields.String()
    cover = fields.String()
    url = fields.String()


class MpCardSchema(Schema):
    id = fields.Integer()
    requested_id = fields.Integer(metadata={"description": "the card opened; differs when its rep left"})
    display_name = fields.String()
    title = fields.String()
    company = fields.String()
    avatar = fields.String()
    phone = fields.String()
    email = fields.String()
    wechat = fields.String()
    intro = fields.String()
    contents = fields.List(fields.Nested(MpContentSchema))
    contact_way = fields.Dict(allow_none=True, metadata={"description": "{config_id} to add the rep, or null"})


class EventSchema(Schema):
    id = fields.String(required=True, validate=_CLIENT_ID, metadata={"description": "client event id (idempotent)"})
    type = fields.Enum(CardEventType, required=True)
    ts = fields.Integer(required=True, strict=True, metadata={"description": "client time, ms since the epoch"})
    card_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    content_id = fields.Integer(strict=True, validate=validate.Range(min=1))
    share_id = fields.String(validate=_SHARE_ID, metadata={"description": "the share the visitor arrived through"})

    @validates_schema
    def _check(self, data, **kwargs):
        now_ms = time.time() * 1000
        if "ts" in data:
            if data["ts"] > now_ms + MAX_FUTURE_SECONDS * 1000:
                raise ValidationError("too far in the future", "ts")
            if data["ts"] < now_ms - MAX_PAST_SECONDS * 1000:
                raise ValidationError("too far in the past", "ts")
        if data.get("type") in _NEEDS_CONTENT and "content_id" not in data:
            raise ValidationError("required for this event type", "content_id")
        if data.get("share_id") and data.get("type") not in (CardEventType.card_view, CardEventType.content_view):
            raise ValidationError("only a card_view or content_view arrives through a share", "share_id")


class EventBatchSchema(Schema):
    events = fields.List(
        fields.Nested(EventSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_EVENTS, error=f"between 1 and {MAX_EVENTS} events per batch"),
    )

    @validates_schema
    def _unique(self, data, **kwargs):
        ids = [e["id"] for e in data.get("events", [])]
        if len(ids) != len(set(ids)):
            raise ValidationError("event ids must be unique within a batch", "events")


class AcceptedSchema(Schema):
    accepted = fields.Integer()
    shares = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "client event id of each share → its share id"},
    )
