"""Sidebar errors: the JSON envelope under /sidebar/v1, a small page everywhere else."""

from __future__ import annotations

from flask import render_template, request

from app.errors import error_response, install
from app.sidebar import bp

API_PREFIX = "/sidebar/v1/"


def _answer(status: int, code: str, message: str, fields: dict | None = None):
    if request.path.startswith(API_PREFIX):
        return error_response(status, code, message, fields)
    return render_template("sidebar/error.html", status=status, code=code, message=message), status


install(bp, _answer, label="sidebar", unexpected="something went wrong on our side; it has been logged")
