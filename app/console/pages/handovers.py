"""Hand-overs: list, live progress per state, per-customer detail, approve / cancel."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.console import bp
from app.console.auth import current_principal, login_required
from app.console.forms import load_form, load_query, page_arg
from app.models import ChatState, HandoverKind, HandoverStatus, ItemState
from app.models.handover import OPEN_ITEM_STATES
from app.schemas.handover import CancelSchema, HandoverItemQuery, HandoverQuery
from app.services import handover

ADMIN = ("admin",)
# A hand-over's group chats page on their own (``chats_page``) below its customers.
CHATS_PER_PAGE = 50


@bp.route("/handovers")
@login_required()
def handovers():
    """Hand-overs the signed-in user may see, newest first, with their progress."""
    query, errors = load_query(HandoverQuery)
    page = handover.search(current_principal(), **query)
    return render_template(
        "console/handovers/list.html",
        page=page,
        filters=request.args,
        errors=errors,
        statuses=HandoverStatus,
        kinds=HandoverKind,
    ), (422 if errors else 200)


@bp.route("/handovers/<int:handover_id>")
@login_required()
def handovers_detail(handover_id: int):
    """One hand-over: live counts per state, its customers (state, errcode, history) and chats."""
    return _detail(handover_id, {})


def _detail(handover_id: int, cancel_errors: dict, status: int = 200):
    principal = current_principal()
    view = handover.get(principal, handover_id)
    query, errors = load_query(HandoverItemQuery)
    if errors:
        status = 422
    items = handover.customers(principal, handover_id, **query)
    chats = None
    if principal.is_admin or view.handover_staff_id == principal.staff_id:
        chats = handover.group_chats(principal, handover_id, page=page_arg("chats_page"), per_page=CHATS_PER_PAGE)
    return render_template(
        "console/handovers/detail.html",
        h=view,
        moving=_moving(view),
        items=items,
        chats=chats,
        filters=request.args,
        errors=errors,
        cancel_errors=cancel_errors,
        item_states=ItemState,
    ), status


@bp.route("/handovers/<int:handover_id>/progress")
@login_required()
def handovers_progress(handover_id: int):
    """The counts-per-state fragment the detail page polls every few seconds."""
    view = handover.get(current_principal(), handover_id)
    return render_template("console/handovers/_progress.html", h=view, moving=_moving(view))


@bp.route("/handovers/<int:handover_id>/approve", methods=["POST"])
@login_required(roles=ADMIN)
def handovers_approve(handover_id: int):
    """Approve a hand-over waiting for approval; it starts at once."""
    handover.approve(current_principal(), handover_id)
    flash("Approved: the hand-over is running.", "success")
    return redirect(url_for("console.handovers_detail", handover_id=handover_id))


@bp.route("/handovers/<int:handover_id>/cancel", methods=["POST"])
@login_required(roles=ADMIN)
def handovers_cancel(handover_id: int):
    """Cancel: nothing more is sent; what WeCom already has is followed to the end."""
    data, errors = load_form(CancelSchema)
    if errors:
        return _detail(handover_id, errors, status=422)
    handover.cancel(current_principal(), handover_id, data.get("reason"))
    flash("Cancelled: customers already requested from WeCom are followed to the end.", "success")
    return redirect(url_for("console.handovers_detail", handover_id=handover_id))


def _moving(view) -> bool:
    """Whether a hand-over's counts may still change (the page keeps polling while they may)."""
    if view.status in (HandoverStatus.running, HandoverStatus.pending_approval):
        return True
    open_chats = (str(ChatState.planned), str(ChatState.requested))
    return any(view.counts.get(str(s)) for s in OPEN_ITEM_STATES) or any(view.group_chats.get(s) for s in open_chats)
