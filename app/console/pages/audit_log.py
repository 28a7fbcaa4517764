"""The audit log: who did what to which row, filtered and paginated (admins)."""

from __future__ import annotations

from flask import render_template, request

from app.console import bp
from app.console.auth import current_principal, login_required
from app.console.forms import load_query
from app.errors import ApiError
from app.schemas.audit import AuditQuery
from app.services import audit


@bp.route("/audit", endpoint="audit_log")
@login_required(roles=("admin",))
def audit_log_list():
    """Entries newest first, by actor, action prefix, target and date range."""
    values = request.args.to_dict()
    query, errors = load_query(AuditQuery)
    try:
        result = audit.search(current_principal(), **query)
    except ApiError as exc:  # a reversed range: said beside the field
        if exc.status != 422:
            raise
        errors = exc.fields or {}
        result = audit.search(current_principal(), page=1, per_page=query["per_page"])
    filters = {k: v for k, v in values.items() if k not in ("page", "per_page")}
    return (
        render_template("console/audit/list.html", result=result, values=values, errors=errors, filters=filters),
        422 if errors else 200,
    )
