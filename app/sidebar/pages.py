"""Sidebar pages: the chat toolbar page and one customer's page (where alerts link to).

Both are a shell rendered here and filled by ``static/sidebar.js``, one renderer for both: the
toolbar page asks the WeCom client who the current contact is; the customer page carries the
360 (already scoped to the rep: another rep's customer is a 404 page) in the HTML.
"""

from __future__ import annotations

from flask import current_app, render_template

from app.services import customer360
from app.services.auth import Principal
from app.sidebar import bp
from app.sidebar.schemas import as_json
from app.sidebar.session import page_login_required


@bp.get("")
@page_login_required
def toolbar(principal: Principal):
    """The chat toolbar page: JS-SDK config, then ``getCurExternalContact``, then its 360."""
    return render_template(
        "sidebar/sidebar.html", mode="toolbar", initial=None, staff_id=principal.staff_id, jssdk_url=_jssdk_url()
    )


@bp.get("/customers/<int:customer_id>")
@page_login_required
def customer_page(principal: Principal, customer_id: int):
    """One customer's 360 (the link in an alert)."""
    view = as_json(customer360.view(principal, customer_id))
    initial = {"customer_id": view["customer"]["id"], **view}
    return render_template(
        "sidebar/sidebar.html", mode="customer", initial=initial, staff_id=principal.staff_id, jssdk_url=None
    )


def _jssdk_url() -> str | None:
    return current_app.config.get("WECOM_JSSDK_URL") or None
