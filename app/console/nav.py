"""The console's navigation: one list, shown in ``base.html``."""

from __future__ import annotations

from flask import current_app, g, request, url_for

from app.console import bp

# (endpoint, label, test id). A link shows once its page module defines the endpoint, to the
# roles its ``login_required`` lets in.
NAV = (
    ("console.dashboard", "Dashboard", "nav-dashboard"),
    ("console.contact_codes", "Contact codes", "nav-contact-codes"),
    ("console.staff", "Staff", "nav-staff"),
    ("console.handovers", "Hand-overs", "nav-handovers"),
    ("console.customers", "Customers", "nav-customers"),
    ("console.alert_rules", "Alert rules", "nav-alert-rules"),
    ("console.audit_log", "Audit log", "nav-audit-log"),
)


@bp.context_processor
def _nav() -> dict:
    def nav_links() -> list[dict]:
        links = []
        current = request.endpoint or ""
        principal = g.get("principal")
        for endpoint, label, testid in NAV:
            view = current_app.view_functions.get(endpoint)
            if view is None or (principal and principal.role not in getattr(view, "console_roles", ())):
                continue
            # A section is current on its list and on the pages under it (console.staff_detail…).
            active = current == endpoint or current.startswith(endpoint + "_")
            links.append({"url": url_for(endpoint), "label": label, "testid": testid, "active": active})
        return links

    def has_endpoint(endpoint: str) -> bool:
        """Whether a page exists (links to pages of other modules degrade to plain text)."""
        return endpoint in current_app.view_functions

    return {"nav_links": nav_links, "has_endpoint": has_endpoint}
