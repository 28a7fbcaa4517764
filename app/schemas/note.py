"""Customer notes and tag edits on the 360 view (validation only)."""

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from app.models.note import NOTE_MAX_LENGTH


class NoteSchema(Schema):
    """A note's text: 1 to 2000 characters once surrounding whitespace is trimmed."""

    body = fields.String(required=True, validate=validate.Length(min=1, max=NOTE_MAX_LENGTH))

    @pre_load
    def _strip(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("body"), str):
            data = {**data, "body": data["body"].strip()}
        return data


class TagEditSchema(Schema):
    """Tags to add to and remove from one follow relation (our tag ids)."""

    add_tag_ids = fields.List(fields.Integer(), load_default=list, validate=validate.Length(max=100))
    remove_tag_ids = fields.List(fields.Integer(), load_default=list, validate=validate.Length(max=100))
    staff_id = fields.Integer(load_default=None, allow_none=True)

    @validates_schema
    def _something(self, data, **kwargs):
        if not data["add_tag_ids"] and not data["remove_tag_ids"]:
            raise ValidationError("add or remove at least one tag", "add_tag_ids")
        both = set(data["add_tag_ids"]) & set(data["remove_tag_ids"])
        if both:
            raise ValidationError(f"tag {min(both)} is both added and removed", "remove_tag_ids")
