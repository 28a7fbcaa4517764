"""The console's pages, one module each; importing this package registers their routes."""

from app.console.pages import (  # noqa: F401
    alert_rules,
    audit_log,
    contact_codes,
    customers,
    dashboard,
    handovers,
    staff,
)
