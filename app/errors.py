"""One JSON error envelope for the whole API: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

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


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.fields)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        return error_response(422, "validation_error", "the request has invalid fields", exc.normalized_messages())

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not _wants_json():
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error")
