"""Console errors are pages, not JSON: a service's ApiError, 400/403/404 and the unexpected."""

from __future__ import annotations

import logging

from flask import render_template
from werkzeug.exceptions import HTTPException

from app.console import bp
from app.errors import ApiError
from app.extensions import db

log = logging.getLogger(__name__)


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    db.session.rollback()  # whatever the view started is not kept
    return _page(exc.status, exc.message)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return _page(exc.code or 500, exc.description or exc.name)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.exception("unhandled console error")
    db.session.rollback()
    return _page(500, "Something went wrong on our side; it has been logged.")


_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict", 429: "Too many attempts"}


def _page(status: int, message: str):
    title = _TITLES.get(status, "Error")
    return render_template("console/error.html", status=status, title=title, message=message), status
