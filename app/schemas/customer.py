from marshmallow import Schema, fields, validate

from app.models import DeletedBy, FollowStatus, IdentityType, IntentLevel
from app.schemas.common import PageQuery


class CustomerQuery(PageQuery):
    staff = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "a rep's userid"})
    tag = fields.Integer(metadata={"description": "tag id"})
    channel = fields.String(validate=validate.Length(min=1, max=64))
    q = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "name, remark or identity"})
    level = fields.Enum(IntentLevel, metadata={"description": "card intent level (a rep: towards them)"})


class TagSchema(Schema):
    id = fields.Integer()
    wecom_tag_id = fields.String()
    group_name = fields.String()
    name = fields.String()


class IdentitySchema(Schema):
    type = fields.Enum(IdentityType)
    value = fields.String()
    source = fields.String()
    verified = fields.Boolean()
    created_at = fields.DateTime()


class FollowSchema(Schema):
    id = fields.Integer()
    staff_id = fields.Integer()
    staff_userid = fields.String(attribute="staff.userid")
    staff_name = fields.String(attribute="staff.name")
    status = fields.Enum(FollowStatus)
    add_way = fields.Integer()
    state = fields.String()
    remark = fields.String()
    description = fields.String()
    added_at = fields.DateTime()
    deleted_at = fields.DateTime(allow_none=True)
    deleted_by = fields.Enum(DeletedBy, allow_none=True)
    tags = fields.List(fields.Nested(TagSchema))


class CustomerSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    avatar = fields.String()
    corp_name = fields.String()
    first_channel = fields.String(allow_none=True)
    last_channel = fields.String(allow_none=True)
    created_at = fields.DateTime()


class CustomerDetailSchema(CustomerSchema):
    gender = fields.Integer()
    identities = fields.List(fields.Nested(IdentitySchema))
    follows = fields.List(fields.Nested(FollowSchema))
    tags = fields.List(fields.Nested(TagSchema))
