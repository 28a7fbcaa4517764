"""marshmallow schemas: validation and shaping only (no queries, no authorization)."""
