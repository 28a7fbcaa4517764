"""One JSON error envelope for the whole API: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, default_exceptions

from app.extensions import db

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client can act on; rendered as the JSON envelope with ``status``."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


class NotFound(ApiError):
    def __init__(self, what: str = "resource"):
        super().__init__(404, "not_found", f"{what} not found")


class Conflict(ApiError):
    def __init__(self, message: str, fields: dict | None = None):
        super().__init__(409, "conflict", message, fields)


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return jsonify(body), status


def _wants_json() -> bool:
    # Pages (console, sidebar) render their own errors; everything else, the sidebar's JSON
    # API (/sidebar/v1) included, speaks JSON.
    path = request.path
    return path.startswith("/sidebar/v1/") or not path.startswith(("/console", "/sidebar"))


# How a surface turns an error into a response: (status, code, message, fields) → response.
Answer = Callable[[int, str, str, dict | None], ResponseReturnValue]


def install(target: Flask | Blueprint, answer: Answer, *, label: str, unexpected: str = "internal error") -> None:
    """Register the handlers for every error raised under ``target`` (the app, or a blueprint
    with pages of its own): a service's ApiError, a schema's ValidationError, HTTP errors and
    the unexpected (logged, answered 500 with ``unexpected``). Each first rolls the session
    back, so a failed request keeps nothing it started, then answers through ``answer``: the
    API's JSON envelope, the console's page, the sidebar's JSON or page. One set of handlers
    for every surface; only the shape of the answer differs."""

    @target.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        db.session.rollback()
        return answer(exc.status, exc.code, exc.message, exc.fields)

    @target.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        db.session.rollback()
        return answer(422, "validation_error", "the request has invalid fields", exc.normalized_messages())

    @target.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        db.session.rollback()
        code = (exc.name or "error").lower().replace(" ", "_")
        return answer(exc.code or 500, code, exc.description or exc.name, None)

    @target.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled %s error", label)
        db.session.rollback()
        return answer(500, "internal_error", unexpected, None)


def _app_answer(status: int, code: str, message: str, fields: dict | None):
    if not _wants_json():
        # A console or sidebar URL no blueprint matched (an unknown page): werkzeug's own page.
        return default_exceptions[status]() if status in default_exceptions else (message, status)
    return error_response(status, code, message, fields)


def init_app(app: Flask) -> None:
    install(app, _app_answer, label="app")
