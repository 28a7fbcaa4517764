"""Filtering the audit log (validation only)."""

from marshmallow import fields, validate

from app.schemas.common import PageQuery


class AuditQuery(PageQuery):
    actor = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": '"user:<id>" or "system"'})
    action_prefix = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "e.g. customer."})
    target_type = fields.String(validate=validate.Length(min=1, max=32))
    target_id = fields.String(validate=validate.Length(min=1, max=64))
    date_from = fields.Date(metadata={"description": "first UTC day"})
    date_to = fields.Date(metadata={"description": "last UTC day (inclusive)"})
