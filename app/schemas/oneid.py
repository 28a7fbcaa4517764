"""OneID requests and responses: identity resolution, merges, suggestions, conflicts, timeline."""

from marshmallow import Schema, fields, validate

from app.models import (
    ConflictKind,
    ConflictStatus,
    IdentityType,
    MergeKind,
    MergeStatus,
    SuggestionStatus,
)
from app.schemas.common import PageQuery

Reason = validate.Length(min=1, max=500)


class ResolveQuery(Schema):
    type = fields.Enum(IdentityType, required=True, metadata={"description": "identity type"})
    value = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "identity value; phones in any common format (region CN by default)"},
    )


class ResolvedSchema(Schema):
    customer_id = fields.Integer(metadata={"description": "the customer it resolves to (after merges)"})
    type = fields.Enum(IdentityType)
    value = fields.String(metadata={"description": "as stored (phones in E.164)"})
    source = fields.String()
    verified = fields.Boolean()
    created_at = fields.DateTime()


class MergeBody(Schema):
    ids = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1)),
        required=True,
        validate=validate.Length(min=2, max=20),
        metadata={"description": "customers to merge into the oldest of them"},
    )
    reason = fields.String(required=True, validate=Reason)


class UnmergeBody(Schema):
    merge_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    reason = fields.String(required=True, validate=Reason)


class DecisionBody(Schema):
    reason = fields.String(required=True, validate=Reason)


class MergeRecordSchema(Schema):
    id = fields.Integer()
    survivor_id = fields.Integer()
    absorbed_id = fields.Integer()
    kind = fields.Enum(MergeKind)
    status = fields.Enum(MergeStatus)
    actor = fields.String()
    source = fields.String()
    reason = fields.String()
    moved = fields.Function(
        lambda r: {key: len(entry["rows"]) for key, entry in (r.moved or {}).items()},
        metadata={"description": "rows moved per table.column"},
    )
    folded = fields.Function(lambda r: len(r.folds or []), metadata={"description": "rows folded into the survivor's"})
    created_at = fields.DateTime()
    undone_at = fields.DateTime(allow_none=True)
    undone_by = fields.String(allow_none=True)
    undo_reason = fields.String(allow_none=True)


class MergeResultSchema(Schema):
    survivor_id = fields.Integer()
    merges = fields.List(fields.Nested(MergeRecordSchema))


class MergesQuery(PageQuery):
    pass


class SuggestionQuery(PageQuery):
    status = fields.Enum(SuggestionStatus, load_default=SuggestionStatus.open)


class SuggestionSchema(Schema):
    id = fields.Integer()
    customer_ids = fields.Function(lambda s: [s.customer_a_id, s.customer_b_id])
    reason = fields.String(metadata={"description": "same_phone | same_name_company"})
    evidence = fields.Dict()
    status = fields.Enum(SuggestionStatus)
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    merge_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


class ConflictQuery(PageQuery):
    status = fields.Enum(ConflictStatus, load_default=ConflictStatus.open)


class ConflictSchema(Schema):
    id = fields.Integer()
    kind = fields.Enum(ConflictKind)
    customer_ids = fields.List(fields.Integer())
    identities = fields.List(fields.List(fields.String()), metadata={"description": "the refused link: [type, value]"})
    source = fields.String()
    detail = fields.String()
    status = fields.Enum(ConflictStatus)
    resolved_by = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    resolution_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()


class TimelineQuery(PageQuery):
    kind = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "only entries of this kind"})


class TimelineEntrySchema(Schema):
    at = fields.DateTime()
    kind = fields.String(metadata={"description": "channel_add, follow_ended, merged, unmerged, an audit action..."})
    customer_id = fields.Integer(metadata={"description": "the (possibly merged) customer id it happened to"})
    staff_id = fields.Integer(allow_none=True)
    staff_userid = fields.String(allow_none=True)
    staff_name = fields.String(allow_none=True)
    ref_type = fields.String()
    ref_id = fields.Integer()
    detail = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)
