"""Contact codes: list, the full rule form, pause / resume / archive, posters, stats."""

from __future__ import annotations

from flask import render_template

from app.console import bp
from app.console.auth import login_required


@bp.route("/contact-codes")
@login_required()
def contact_codes():
    """The list."""
    return render_template("console/placeholder.html", title="Contact codes")
