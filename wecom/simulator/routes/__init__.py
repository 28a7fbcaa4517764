"""Blueprints of the simulator: WeCom (``/cgi-bin``), WeChat (root), control (``/sim``), QR,
the web OAuth page (``/connect/oauth2/authorize``)."""

from __future__ import annotations

from flask import Blueprint, Flask

from . import auth, directory, external_contact, messages, transfers, wechat
from .common import Api, run
from .control import bp as control_bp
from .oauth import bp as oauth_bp
from .qr import bp as qr_bp

WECOM_APIS: list[Api] = [
    *auth.APIS,
    *directory.APIS,
    *external_contact.APIS,
    *transfers.APIS,
    *messages.APIS,
]
WECHAT_APIS: list[Api] = list(wechat.APIS)


def _blueprint(name: str, prefix: str, apis: list[Api]) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=prefix or None)
    for api in apis:
        # Bind ``api`` now: a closure over the loop variable would see only the last one.
        def view(api: Api = api):
            return run(api)

        bp.add_url_rule(
            "/" + api.path, endpoint=api.path.replace("/", "__"), view_func=view, methods=[api.method]
        )
    return bp


def register(app: Flask) -> None:
    """Mount every simulated API and the control API on ``app``."""
    app.register_blueprint(_blueprint("wecom", "/cgi-bin", WECOM_APIS))
    app.register_blueprint(_blueprint("wechat", "", WECHAT_APIS))
    app.register_blueprint(control_bp)
    app.register_blueprint(qr_bp)
    app.register_blueprint(oauth_bp)
