"""Contact codes in and out: validation (limits WeCom and the product set) and shaping."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import url_for
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates, validates_schema

from app.models import AssignmentKind, CodeMode, CodeStatus, CodeStrategy, StaffStatus, WelcomeStatus
from app.schemas.common import PageQuery

STATE = validate.Regexp(r"^[A-Za-z0-9_-]{1,30}$", error="1 to 30 letters, digits, _ or -")
HHMM = validate.Regexp(r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", error="HH:MM, 00:00 to 24:00")
MAX_MEMBERS = 100
MAX_WELCOME_BYTES = 4000
MAX_ATTACHMENTS = 9
TEXT_PLACEHOLDERS = ("customer_name", "rep_name", "channel", "code_name")
PAGE_PLACEHOLDERS = ("rep_userid",)


PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def unknown_placeholders(text: str, allowed: tuple[str, ...]) -> list[str]:
    """Placeholders in ``text`` that rendering would not fill."""
    return sorted({name for name in PLACEHOLDER.findall(text) if name not in allowed})


class _Slot(Schema):
    start = fields.String(required=True, validate=HHMM)
    end = fields.String(required=True, validate=HHMM)

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data["start"] >= data["end"]:
            raise ValidationError("must end after it starts", "end")


class WeekdaySlotSchema(_Slot):
    weekdays = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=7)),
        required=True,
        validate=validate.Length(min=1, max=7),
        metadata={"description": "ISO weekdays, 1 = Monday"},
    )


class ExceptionSchema(Schema):
    date = fields.Date(required=True)
    slots = fields.List(
        fields.Nested(_Slot),
        load_default=list,
        validate=validate.Length(max=10),
        metadata={"description": "empty: closed all day"},
    )


class ScheduleSchema(Schema):
    timezone = fields.String(load_default="Asia/Shanghai")
    slots = fields.List(fields.Nested(WeekdaySlotSchema), load_default=list, validate=validate.Length(max=50))
    exceptions = fields.List(fields.Nested(ExceptionSchema), load_default=list, validate=validate.Length(max=366))

    @validates("timezone")
    def _zone(self, value, **kwargs):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError("not an IANA timezone") from exc

    @validates_schema
    def _unique_dates(self, data, **kwargs):
        dates = [e["date"] for e in data.get("exceptions") or []]
        if len(dates) != len(set(dates)):
            raise ValidationError("one exception per date", "exceptions")

    @post_load
    def _jsonable(self, data, **kwargs):
        # Stored as JSON: dates as ISO strings.
        data["exceptions"] = [{**e, "date": e["date"].isoformat()} for e in data["exceptions"]]
        return data


class MemberInSchema(Schema):
    userid = fields.String(required=True, validate=validate.Length(min=1, max=64))
    weight = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100))
    daily_cap = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))
    total_cap = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))
    backup = fields.Boolean(load_default=False, metadata={"description": "used only when no pool member is available"})
    paused = fields.Boolean(load_default=False)


class TagSpecSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=30))
    group_name = fields.String(load_default="渠道活码", validate=validate.Length(min=1, max=30))


class AttachmentSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(["link", "image", "miniprogram"]))
    title = fields.String(validate=validate.Length(min=1, max=128))
    url = fields.Url(schemes={"http", "https"})
    desc = fields.String(validate=validate.Length(max=512))
    picurl = fields.Url(schemes={"http", "https"})
    media_id = fields.String(validate=validate.Length(min=1, max=256))
    pic_url = fields.Url(schemes={"http", "https"})
    pic_media_id = fields.String(validate=validate.Length(min=1, max=256))
    appid = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "default: the business-card mini-program"}
    )
    page = fields.String(
        validate=validate.Length(min=1, max=256),
        metadata={"description": "default: the assigned rep's card; {rep_userid} is filled in"},
    )

    _REQUIRED = {"link": ("title", "url"), "image": (), "miniprogram": ("title", "pic_media_id")}

    @validates_schema
    def _by_type(self, data, **kwargs):
        kind = data.get("type")
        errors = {
            name: ["required for a " + kind + " attachment"]
            for name in self._REQUIRED.get(kind, ())
            if not data.get(name)
        }
        if kind == "image" and not (data.get("media_id") or data.get("pic_url")):
            errors["media_id"] = ["an image needs media_id or pic_url"]
        if data.get("page"):
            unknown = unknown_placeholders(data["page"], PAGE_PLACEHOLDERS)
            if unknown:
                errors["page"] = [f"unknown placeholders: {', '.join(unknown)}"]
        if errors:
            raise ValidationError(errors)


class WelcomeSchema(Schema):
    text = fields.String(
        load_default="",
        metadata={"description": "≤ 4000 bytes; placeholders {customer_name} {rep_name} {channel} {code_name}"},
    )
    attachments = fields.List(
        fields.Nested(AttachmentSchema), load_default=list, validate=validate.Length(max=MAX_ATTACHMENTS)
    )

    @validates("text")
    def _text(self, value, **kwargs):
        if len(value.encode()) > MAX_WELCOME_BYTES:
            raise ValidationError(f"at most {MAX_WELCOME_BYTES} bytes (UTF-8)")
        unknown = unknown_placeholders(value, TEXT_PLACEHOLDERS)
        if unknown:
            raise ValidationError(f"unknown placeholders: {', '.join(unknown)}")

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data.get("text") and not data.get("attachments"):
            raise ValidationError("a welcome needs text or attachments", "text")


class _CodeFields(Schema):
    name = fields.String(validate=validate.Length(min=1, max=64))
    channel = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "the source label"})
    strategy = fields.Enum(CodeStrategy, metadata={"description": "routed mode only; WeCom rotates in wecom mode"})
    members = fields.List(fields.Nested(MemberInSchema), validate=validate.Length(min=1, max=MAX_MEMBERS))
    schedule = fields.Nested(ScheduleSchema, allow_none=True, metadata={"description": "null: always open"})
    skip_verify = fields.Boolean()
    expires_at = fields.AwareDateTime(allow_none=True)
    welcome = fields.Nested(WelcomeSchema, allow_none=True)
    tags = fields.List(fields.Nested(TagSpecSchema), validate=validate.Length(max=20))

    @validates("members")
    def _unique_members(self, value, **kwargs):
        userids = [m["userid"] for m in value]
        if len(userids) != len(set(userids)):
            raise ValidationError("a rep may appear once")


class ContactCodeCreateSchema(_CodeFields):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    channel = fields.String(required=True, validate=validate.Length(min=1, max=64))
    mode = fields.Enum(CodeMode, load_default=CodeMode.wecom)
    strategy = fields.Enum(CodeStrategy, load_default=CodeStrategy.weighted_round_robin)
    members = fields.List(
        fields.Nested(MemberInSchema), required=True, validate=validate.Length(min=1, max=MAX_MEMBERS)
    )
    skip_verify = fields.Boolean(load_default=True)
    schedule = fields.Nested(ScheduleSchema, allow_none=True, load_default=None)
    expires_at = fields.AwareDateTime(allow_none=True, load_default=None)
    welcome = fields.Nested(WelcomeSchema, allow_none=True, load_default=None)
    tags = fields.List(fields.Nested(TagSpecSchema), load_default=list, validate=validate.Length(max=20))
    state = fields.String(validate=STATE, metadata={"description": "the WeCom state; generated when omitted"})


class ContactCodeUpdateSchema(_CodeFields):
    """Every field optional; mode and state cannot change (printed codes carry them)."""


class ContactCodeQuery(PageQuery):
    status = fields.Enum(CodeStatus)
    mode = fields.Enum(CodeMode)
    q = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "name, channel or state"})


class MemberSchema(Schema):
    staff_id = fields.Integer()
    userid = fields.String(attribute="staff.userid")
    name = fields.String(attribute="staff.name")
    staff_status = fields.Enum(StaffStatus, attribute="staff.status")
    weight = fields.Integer()
    daily_cap = fields.Integer(allow_none=True)
    total_cap = fields.Integer(allow_none=True)
    backup = fields.Boolean()
    paused = fields.Boolean()
    config_id = fields.String(allow_none=True, metadata={"description": "routed mode: this rep's own way"})
    qr_code = fields.String(allow_none=True)


class ContactCodeSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    channel = fields.String()
    mode = fields.Enum(CodeMode)
    strategy = fields.Enum(CodeStrategy)
    status = fields.Enum(CodeStatus)
    state = fields.String()
    config_id = fields.String(allow_none=True, metadata={"description": "wecom mode: the multi-person way"})
    qr_code = fields.String(allow_none=True)
    landing_url = fields.Method("_landing_url")
    poster_url = fields.Method("_poster_url")
    wecom_users = fields.List(fields.String(), metadata={"description": "wecom mode: the reps WeCom offers now"})
    skip_verify = fields.Boolean()
    expires_at = fields.DateTime(allow_none=True)
    schedule = fields.Dict(allow_none=True)
    welcome = fields.Dict(allow_none=True)
    tags = fields.List(fields.Dict())
    members = fields.List(fields.Nested(MemberSchema))
    created_by = fields.String()
    paused_at = fields.DateTime(allow_none=True)
    archived_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _landing_url(self, code) -> str:
        return url_for("landing.land", state=code.state, _external=True)

    def _poster_url(self, code) -> str:
        return url_for("api_contact_codes.poster", code_id=code.id, _external=True)


class StatsQuery(Schema):
    date_from = fields.Date(data_key="from", metadata={"description": "default: 29 days before `to`"})
    date_to = fields.Date(data_key="to", metadata={"description": "default: today in the code's timezone"})


class _Counts(Schema):
    scans = fields.Integer(metadata={"description": "landings answered (routed mode)"})
    adds = fields.Integer()
    welcomes_sent = fields.Integer()
    lost = fields.Integer(metadata={"description": "deleted the rep within 7 days of the add"})
    net = fields.Integer()


class RepCountsSchema(_Counts):
    staff_id = fields.Integer()
    userid = fields.String()
    name = fields.String()


class DayCountsSchema(_Counts):
    day = fields.Date()
    by_rep = fields.List(fields.Nested(RepCountsSchema))


class StatsSchema(Schema):
    code_id = fields.Integer()
    date_from = fields.Date(data_key="from", attribute="from")
    date_to = fields.Date(data_key="to", attribute="to")
    totals = fields.Nested(_Counts)
    by_rep = fields.List(fields.Nested(RepCountsSchema))
    days = fields.List(fields.Nested(DayCountsSchema))


class AssignmentSchema(Schema):
    id = fields.Integer()
    staff_id = fields.Integer(allow_none=True)
    kind = fields.Enum(AssignmentKind)
    backup = fields.Boolean()
    reason = fields.Dict()
    day = fields.Date()
    created_at = fields.DateTime()


class AddSchema(Schema):
    id = fields.Integer()
    staff_id = fields.Integer()
    userid = fields.String()
    customer_id = fields.Integer()
    customer_name = fields.String()
    external_userid = fields.String()
    added_at = fields.DateTime()
    day = fields.Date()
    tag_status = fields.String()
    welcome_status = fields.Enum(WelcomeStatus, allow_none=True)
    welcome_errcode = fields.Integer(allow_none=True)
