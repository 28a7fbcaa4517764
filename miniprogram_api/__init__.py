"""The customer-facing mini-program API (/mp/v1)."""
