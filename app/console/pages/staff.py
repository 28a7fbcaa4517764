"""Staff: status, departments and customer counts; sync now; start a hand-over."""

from __future__ import annotations

from flask import render_template

from app.console import bp
from app.console.auth import login_required


@bp.route("/staff")
@login_required()
def staff():
    """The list."""
    return render_template("console/placeholder.html", title="Staff")
