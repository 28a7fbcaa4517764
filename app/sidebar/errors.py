"""Sidebar errors: the JSON envelope under /sidebar/v1, a small page everywhere else."""

from __future__ import annotations

import logging

from flask import render_template, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from app.errors import ApiError, error_response
from app.extensions import db
from app.sidebar import bp

log = logging.getLogger(__name__)

API_PREFIX = "/sidebar/v1/"


def _answer(status: int, code: str, message: str, fields: dict | None = None):
    db.session.rollback()  # whatever the view started is not kept
    if request.path.startswith(API_PREFIX):
        return error_response(status, code, message, fields)
    return render_template("sidebar/error.html", status=status, code=code, message=message), status


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return _answer(exc.status, exc.code, exc.message, exc.fields)


@bp.errorhandler(ValidationError)
def _validation_error(exc: ValidationError):
    return _answer(422, "validation_error", "the request has invalid fields", exc.normalized_messages())


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return _answer(exc.code or 500, code, exc.description or exc.name)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.exception("unhandled sidebar error")
    return _answer(500, "internal_error", "something went wrong on our side; it has been logged")
