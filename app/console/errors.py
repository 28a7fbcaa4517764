"""Console errors are pages, not JSON: a service's ApiError, 400/403/404 and the unexpected."""

from __future__ import annotations

from flask import render_template

from app.console import bp
from app.errors import install

_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict", 429: "Too many attempts"}


def _page(status: int, code: str, message: str, fields: dict | None = None):
    title = _TITLES.get(status, "Error")
    return render_template("console/error.html", status=status, title=title, message=message), status


install(bp, _page, label="console", unexpected="Something went wrong on our side; it has been logged.")
