"""The dashboard: adds per day by channel, lost customers, alerts sent, hand-overs running."""

from __future__ import annotations

from flask import render_template, request
from marshmallow import Schema, fields

from app.console import bp, charts
from app.console.auth import current_principal, login_required
from app.console.forms import load_query
from app.errors import ApiError
from app.services import dashboard as dashboards


class RangeQuery(Schema):
    date_from = fields.Date()
    date_to = fields.Date()


@bp.route("/")
@login_required()
def dashboard():
    """The figures of the chosen range (default: the last 14 days), with charts."""
    values = request.args.to_dict()
    data, errors = load_query(RangeQuery)
    status = 422 if errors else 200
    try:
        board = dashboards.overview(current_principal(), data.get("date_from"), data.get("date_to"))
    except ApiError as exc:  # a reversed or too long range: said beside the field
        errors, status = exc.fields or {}, 422
        board = dashboards.overview(current_principal())
    return (
        render_template("console/dashboard.html", board=board, charts=charts, values=values, errors=errors),
        status,
    )
