"""The rep sidebar under /sidebar: the WeCom chat toolbar page (聊天工具栏) and its JSON API.

- ``oauth``: sign-in through WeCom's web OAuth (code → userid → the rep's account), the state
  a signed nonce bound to the browser;
- ``session``: the sidebar's session (a server-side session id in Flask's signed cookie), the
  sign-in guards and the CSRF header check on every state-changing call;
- ``api``: ``/sidebar/v1/…`` JSON (JS-SDK signatures, the customer 360, timeline, notes, tags),
  answering the project's error envelope; every customer read goes through the services, which
  scope it to the rep (another rep's customer is a 404);
- ``pages``: ``/sidebar`` (the toolbar page) and ``/sidebar/customers/<id>`` (alert links).
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("sidebar", __name__, url_prefix="/sidebar", template_folder="templates", static_folder="static")


def init_app(app: Flask) -> None:
    """Register the sidebar on ``app`` (its modules add their routes to :data:`bp`)."""
    from app.sidebar import api, errors, oauth, pages, session  # noqa: F401

    app.register_blueprint(bp)
