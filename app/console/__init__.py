"""The admin web console under /console: server-rendered pages, little JavaScript, no build.

How a page is written (every page module follows it, so the console behaves one way):

- a module in ``app/console/pages/`` adds routes to :data:`bp` with ``@bp.route``;
- every view carries ``@login_required()`` (or ``roles=("admin",)``) from ``app.console.auth``
  and calls the services with ``current_principal()``; views hold no queries;
- a form post is loaded with ``app.console.forms.load_form`` (the API's marshmallow schemas);
  on errors the page re-renders with status 422 and the errors in place (``_macros.html``);
- every POST carries ``{{ m.csrf() }}``: the blueprint refuses a missing or wrong token with 400;
- an ``ApiError`` a service raises becomes the error page with its status (404, 403, 409…).

Endpoints the navigation links to: ``console.dashboard``, ``console.contact_codes``,
``console.staff``, ``console.handovers``, ``console.customers``, ``console.alert_rules`` and
``console.audit_log``; a link shows once its endpoint exists.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")


def init_app(app: Flask) -> None:
    """Register the console on ``app`` (its pages are routes of :data:`bp`)."""
    # Imported here, not at the top: the modules add their routes to ``bp`` as they load.
    from app.console import auth, errors, nav, pages  # noqa: F401

    app.register_blueprint(bp)
