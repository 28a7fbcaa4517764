"""Hand-overs: list, live progress per state, per-customer detail, approve / cancel."""

from __future__ import annotations

from flask import render_template

from app.console import bp
from app.console.auth import login_required


@bp.route("/handovers")
@login_required()
def handovers():
    """The list."""
    return render_template("console/placeholder.html", title="Hand-overs")
