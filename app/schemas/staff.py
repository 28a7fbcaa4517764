from marshmallow import Schema, fields, validate

from app.models import StaffStatus
from app.schemas.common import PageQuery


class StaffQuery(PageQuery):
    status = fields.Enum(StaffStatus)
    department = fields.Integer(metadata={"description": "WeCom department id"})
    q = fields.String(validate=validate.Length(max=64), metadata={"description": "name or userid contains"})


class StaffSchema(Schema):
    id = fields.Integer()
    userid = fields.String()
    name = fields.String()
    department_wecom_id = fields.Integer(allow_none=True)
    status = fields.Enum(StaffStatus)
    resigned_at = fields.DateTime(allow_none=True)
