"""The customer-facing mini-program API (/mp/v1).

Its own authentication: mini-program session tokens (``app.services.mp_auth``), not the admin
API's bearer tokens. Every request counts against a per-address rate limit, every
authenticated one against a per-token limit too (429 with Retry-After).
"""

from __future__ import annotations

from flask import Flask

MP_PREFIX = "/mp/v1"


def init_app(app: Flask) -> None:
    from miniprogram_api import views

    app.register_blueprint(views.bp, url_prefix=MP_PREFIX)
