"""Alert rules, alerts, rep preferences and alert settings: validation and shaping only."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates, validates_schema

from app.models import AlertAudience, AlertKind, DeliveryState
from app.schemas.common import PageQuery

CLICK_ACTIONS = ("click_phone", "copy_wechat", "save_contact", "add_wecom")
MAX_WINDOW_SECONDS = 7 * 86400
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# -- rule params, one schema per kind ---------------------------------------------------------
class NoParams(Schema):
    """Kinds without settings accept an empty object only."""


class CardOpenedParams(Schema):
    min_visits = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "alert only from this visit on (2 = returning visitors only)"},
    )


class ContentReadParams(Schema):
    min_seconds = fields.Integer(
        load_default=30,
        validate=validate.Range(min=1, max=3600),
        metadata={"description": "alert when one read lasts at least this long"},
    )


class ContactClickParams(Schema):
    actions = fields.List(
        fields.String(validate=validate.OneOf(CLICK_ACTIONS)),
        load_default=lambda: list(CLICK_ACTIONS),
        validate=validate.Length(min=1),
        metadata={"description": "which clicks alert: " + ", ".join(CLICK_ACTIONS)},
    )

    @validates("actions")
    def _unique(self, value, **_):
        if len(set(value)) != len(value):
            raise ValidationError("each action at most once")


PARAMS: dict[AlertKind, type[Schema]] = {
    AlertKind.card_opened: CardOpenedParams,
    AlertKind.content_read: ContentReadParams,
    AlertKind.contact_click: ContactClickParams,
}


def load_params(kind: AlertKind, params: dict) -> dict:
    """Validate a rule's params for its kind (unknown keys refused); defaults filled in."""
    if not isinstance(params, dict):
        raise ValidationError("must be an object")
    return PARAMS.get(kind, NoParams)().load(params)


# -- rules ------------------------------------------------------------------------------------
class AlertRuleSchema(Schema):
    id = fields.Integer()
    kind = fields.Enum(AlertKind)
    name = fields.String()
    default = fields.Function(lambda rule: rule.default_of is not None, metadata={"description": "shipped default"})
    enabled = fields.Boolean()
    audience = fields.Enum(AlertAudience)
    window_seconds = fields.Integer()
    params = fields.Dict()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class AlertRuleUpdate(Schema):
    name = fields.String(validate=validate.Length(min=1, max=64))
    enabled = fields.Boolean()
    audience = fields.Enum(AlertAudience)
    window_seconds = fields.Integer(
        validate=validate.Range(min=0, max=MAX_WINDOW_SECONDS),
        metadata={"description": "one alert per rule, customer and rep within this many seconds"},
    )
    params = fields.Dict(metadata={"description": "kind-specific: see the kinds' params schemas"})

    @post_load
    def _strip_name(self, data, **_):
        if "name" in data:
            data["name"] = data["name"].strip()
            if not data["name"]:
                raise ValidationError({"name": ["must not be blank"]})
        return data


class AlertRuleCreate(AlertRuleUpdate):
    kind = fields.Enum(AlertKind, required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))

    @validates_schema
    def _params_fit_kind(self, data, **_):
        if "kind" in data and "params" in data:
            try:
                load_params(data["kind"], data["params"])
            except ValidationError as exc:
                raise ValidationError({"params": exc.normalized_messages()}) from exc


# -- alerts -----------------------------------------------------------------------------------
class AlertQuery(PageQuery):
    staff = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "the rep's userid"})
    staff_id = fields.Integer()
    customer = fields.Integer(metadata={"description": "customer id"})
    rule = fields.Integer(metadata={"description": "alert rule id"})
    kind = fields.Enum(AlertKind)
    state = fields.Enum(DeliveryState, metadata={"description": "alerts with a delivery in this state"})


class AlertDeliverySchema(Schema):
    id = fields.Integer()
    userid = fields.String()
    staff_id = fields.Integer(allow_none=True)
    role = fields.String()
    state = fields.Enum(DeliveryState)
    reason = fields.String(allow_none=True)
    not_before = fields.DateTime(allow_none=True)
    batch_id = fields.Integer(allow_none=True, metadata={"description": "the delivery whose message carried this"})
    msgid = fields.String(allow_none=True)
    attempts = fields.Integer()
    errcode = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)


class AlertSchema(Schema):
    id = fields.Integer()
    kind = fields.Enum(AlertKind)
    rule_id = fields.Integer(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    staff_id = fields.Integer(allow_none=True)
    title = fields.String()
    text = fields.String()
    link = fields.String(allow_none=True)
    data = fields.Dict()
    occurred_at = fields.DateTime()
    created_at = fields.DateTime()
    deliveries = fields.List(fields.Nested(AlertDeliverySchema))


# -- preferences ------------------------------------------------------------------------------
def _minutes(value: str) -> int:
    match = _HHMM.match(value or "")
    if not match:
        raise ValidationError("use HH:MM (00:00–23:59)")
    return int(match.group(1)) * 60 + int(match.group(2))


class QuietHoursSchema(Schema):
    start = fields.String(required=True, metadata={"description": "HH:MM, local time"})
    end = fields.String(required=True, metadata={"description": "HH:MM, local time; before start = overnight"})

    @post_load
    def _to_minutes(self, data, **_):
        errors, out = {}, {}
        for key in ("start", "end"):
            try:
                out[key] = _minutes(data[key])
            except ValidationError as exc:
                errors[key] = exc.messages
        if errors:
            raise ValidationError(errors)
        if out["start"] == out["end"]:
            raise ValidationError({"end": ["must differ from start"]})
        return out


def _timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("unknown time zone") from exc


class PreferenceUpdate(Schema):
    muted_rule_ids = fields.List(fields.Integer(), validate=validate.Length(max=100))
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True, metadata={"description": "null: none"})
    timezone = fields.String(validate=[validate.Length(min=1, max=64), _timezone])


class PreferenceSchema(Schema):
    staff_id = fields.Integer()
    muted_rule_ids = fields.List(fields.Integer())
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)
    timezone = fields.String()


# -- settings ---------------------------------------------------------------------------------
class AlertSettingsSchema(Schema):
    admin_userids = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(max=100),
        metadata={"description": "WeCom userids told about lost customers and failures"},
    )
    link_base_url = fields.String(
        validate=validate.Regexp(r"^(https?://[^\s]+)?$", error="an http(s) URL, or empty"),
        metadata={"description": "prefixed to the sidebar links in alert messages"},
    )
    burst_limit = fields.Integer(
        validate=validate.Range(min=1, max=30), metadata={"description": "messages per member per burst window"}
    )
    burst_seconds = fields.Integer(
        validate=validate.Range(min=1, max=3600), metadata={"description": "the burst window, seconds"}
    )
