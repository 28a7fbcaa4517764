"""Hand-over requests and responses (validation and shaping only)."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.models import ChatState, HandoverKind, HandoverStatus, HandoverTrigger, ItemState
from app.schemas.common import PageQuery

USERID = validate.Length(min=1, max=64)


class HandoverQuery(PageQuery):
    status = fields.Enum(HandoverStatus)
    kind = fields.Enum(HandoverKind)
    staff = fields.String(validate=USERID, metadata={"description": "the departing rep's userid"})


class HandoverItemQuery(PageQuery):
    state = fields.Enum(ItemState)
    taker = fields.String(validate=USERID, metadata={"description": "the takeover rep's userid"})


class HandoverChatQuery(PageQuery):
    state = fields.Enum(ChatState)


class PlanEntrySchema(Schema):
    customer_id = fields.Integer(required=True, strict=True)
    takeover_userid = fields.String(required=True, validate=USERID)


class HandoverCreateSchema(Schema):
    kind = fields.Enum(HandoverKind, required=True, metadata={"description": "resigned (离职) or on_the_job (在职)"})
    handover_userid = fields.String(required=True, validate=USERID, metadata={"description": "the departing rep"})
    customer_ids = fields.List(
        fields.Integer(strict=True),
        validate=validate.Length(min=1, max=100000),
        metadata={"description": "only these customers (default: all of the rep's)"},
    )
    strategy = fields.String(
        load_default="policy",
        validate=validate.OneOf(["policy", "successor", "explicit"]),
        metadata={"description": "policy: the corp's policy; successor: all to one rep; explicit: the given plan"},
    )
    successor_userid = fields.String(validate=USERID)
    plan = fields.List(fields.Nested(PlanEntrySchema), validate=validate.Length(min=1, max=100000))
    transfer_message = fields.String(
        validate=validate.Length(max=200), metadata={"description": "shown to the customer (on_the_job only)"}
    )
    include_group_chats = fields.Boolean(metadata={"description": "default: the policy's for resigned, no on the job"})
    group_chat_owner_userid = fields.String(validate=USERID)

    @validates_schema
    def _consistent(self, data, **kwargs):
        errors: dict[str, list[str]] = {}
        strategy = data.get("strategy")
        if strategy == "successor" and not data.get("successor_userid"):
            errors["successor_userid"] = ["required when strategy is successor"]
        if strategy != "successor" and data.get("successor_userid"):
            errors["successor_userid"] = ["only with strategy successor"]
        if strategy == "explicit" and not data.get("plan"):
            errors["plan"] = ["required when strategy is explicit"]
        if strategy != "explicit" and data.get("plan"):
            errors["plan"] = ["only with strategy explicit"]
        if strategy == "explicit" and data.get("customer_ids"):
            errors["customer_ids"] = ["the explicit plan names the customers"]
        if data.get("kind") == HandoverKind.resigned and data.get("transfer_message"):
            errors["transfer_message"] = ["resigned transfers carry no message"]
        if errors:
            raise ValidationError(errors)


class CancelSchema(Schema):
    reason = fields.String(validate=validate.Length(max=128))


class HandoverSchema(Schema):
    id = fields.Integer()
    kind = fields.Enum(HandoverKind)
    status = fields.Enum(HandoverStatus)
    trigger = fields.Enum(HandoverTrigger)
    handover_staff_id = fields.Integer()
    handover_userid = fields.String()
    handover_name = fields.String()
    transfer_message = fields.String()
    include_group_chats = fields.Boolean()
    approval_required = fields.Boolean()
    approved_by = fields.String(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    cancelled_by = fields.String(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    next_poll_at = fields.DateTime(allow_none=True)
    total = fields.Integer(metadata={"description": "customers in the hand-over"})
    final = fields.Integer(metadata={"description": "customers in a final state"})
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "customers per state"})
    group_chats = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "group chats per state"}
    )
    needs_attention = fields.Boolean(metadata={"description": "some customer or chat was refused or failed"})
    policy = fields.Dict(metadata={"description": "the policy the plan was made with"})


class HistoryEntrySchema(Schema):
    at = fields.String()
    state = fields.String()
    taker = fields.String(allow_none=True)
    errcode = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)


class HandoverItemSchema(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    customer_name = fields.String(attribute="customer.name")
    external_userid = fields.String()
    takeover_userid = fields.Function(lambda item: item.taker.userid if item.taker is not None else None)
    state = fields.Enum(ItemState)
    errcode = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    batch_id = fields.String(allow_none=True)
    requested_at = fields.DateTime(allow_none=True)
    takeover_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    history = fields.List(fields.Nested(HistoryEntrySchema))


class HandoverChatSchema(Schema):
    id = fields.Integer()
    chat_id = fields.String()
    name = fields.String()
    from_userid = fields.String()
    new_owner_userid = fields.Function(lambda chat: chat.new_owner.userid if chat.new_owner is not None else None)
    state = fields.Enum(ChatState)
    not_before = fields.DateTime()
    errcode = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    history = fields.List(fields.Nested(HistoryEntrySchema))


class PreviewTakerSchema(Schema):
    userid = fields.String()
    name = fields.String()
    customers = fields.Integer()


class PreviewCustomerSchema(Schema):
    customer_id = fields.Integer()
    external_userid = fields.String()
    name = fields.String()
    takeover_userid = fields.String(allow_none=True)


class PreviewChatSchema(Schema):
    chat_id = fields.String()
    name = fields.String()
    new_owner_userid = fields.String(allow_none=True)
    not_before = fields.DateTime()


class HandoverPreviewSchema(Schema):
    kind = fields.Enum(HandoverKind)
    handover_userid = fields.String()
    approval_required = fields.Boolean()
    transfer_message = fields.String()
    total = fields.Integer()
    no_taker = fields.Integer(metadata={"description": "customers no rep has room for"})
    takers = fields.List(fields.Nested(PreviewTakerSchema))
    customers = fields.List(fields.Nested(PreviewCustomerSchema))
    group_chats = fields.List(fields.Nested(PreviewChatSchema))


class HandoverPolicySchema(Schema):
    """The corp's hand-over policy; a PUT changes only the fields it sends."""

    strategy = fields.String(validate=validate.OneOf(["spread", "successor"]))
    successor_userid = fields.String(allow_none=True, validate=USERID)
    successors = fields.Dict(
        keys=fields.String(validate=USERID),
        values=fields.String(validate=USERID),
        metadata={"description": "departing userid → successor userid"},
    )
    scope = fields.String(validate=validate.OneOf(["department", "corp"]))
    approval_required = fields.Boolean()
    customer_cap = fields.Integer(strict=True, validate=validate.Range(min=1, max=1_000_000))
    rep_caps = fields.Dict(
        keys=fields.String(validate=USERID), values=fields.Integer(strict=True, validate=validate.Range(min=0))
    )
    transfer_message = fields.String(validate=validate.Length(max=200))
    include_group_chats = fields.Boolean()
    groupchat_daily_limit = fields.Integer(strict=True, validate=validate.Range(min=1, max=300))
    poll_seconds = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, max=86400)),
        validate=validate.Length(min=1, max=10),
        metadata={"description": "transfer_result poll backoff, seconds"},
    )
