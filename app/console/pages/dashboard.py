"""The dashboard: adds per day by channel, lost customers, alerts sent, hand-overs running."""

from __future__ import annotations

from flask import render_template

from app.console import bp
from app.console.auth import login_required


@bp.route("/")
@login_required()
def dashboard():
    """The numbers of the chosen range, with charts."""
    return render_template("console/dashboard.html")
