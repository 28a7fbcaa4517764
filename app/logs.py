"""Structured JSON logs with a request id, and a filter that keeps secrets out of them."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

from config import SECRET_SETTINGS

# Credentials that travel in URLs or headers (WeCom puts tokens and secrets in query strings).
_CREDENTIAL_PATTERNS = [
    re.compile(r"(?i)(access_token|corpsecret|secret|js_code|code|session_key|ticket)=([^&\s\"']+)"),
    re.compile(r"(?i)(bearer)\s+([A-Za-z0-9._~+/=-]+)"),
    re.compile(r"(?i)(\"(?:access_token|session_key|token|password)\"\s*:\s*\")([^\"]+)"),
]


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Replace every known secret value and every credential-looking parameter by ``***``."""
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + ("=" if "=" in m.group(0) else " ") + "***", text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: tuple[str, ...] = ()):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = getattr(g, "request_id", None)
        for key in ("request_id", "job_id", "event_id", "duration_ms", "status", "path", "method"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str), self.secrets)


def configure(level: str, secrets: tuple[str, ...]) -> None:
    """Route the root logger through the JSON formatter (idempotent)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_scrm", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._scrm = True
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter(secrets))
    root.setLevel(level)


def init_app(app: Flask) -> None:
    secrets = tuple(app.config.get(name, "") for name in SECRET_SETTINGS)
    configure(app.config["LOG_LEVEL"], secrets)
    log = logging.getLogger("app.request")

    @app.before_request
    def _request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if re.fullmatch(r"[A-Za-z0-9-]{8,64}", incoming) else uuid.uuid4().hex
        g.request_started = datetime.now(UTC)

    @app.after_request
    def _log_request(response):
        rid = getattr(g, "request_id", None)
        if rid:
            response.headers["X-Request-ID"] = rid
            started = getattr(g, "request_started", None)
            ms = (datetime.now(UTC) - started).total_seconds() * 1000 if started else None
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(ms, 2) if ms is not None else None,
                },
            )
        return response
