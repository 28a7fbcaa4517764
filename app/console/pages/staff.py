"""Staff: status, departments and customer counts; sync now (with progress); start a hand-over."""

from __future__ import annotations

import re

from flask import flash, redirect, render_template, request, url_for

from app.console import bp
from app.console.auth import current_principal, login_required
from app.console.forms import flatten_errors, fold_errors, load_form, load_query
from app.errors import ApiError
from app.models import HandoverKind, StaffStatus
from app.schemas.handover import HandoverCreateSchema
from app.schemas.staff import StaffQuery
from app.services import handover, sync
from app.services import staff as staff_service

ADMIN = ("admin",)
# How many planned customers the preview lists (the counts cover them all).
PREVIEW_ROWS = 200


@bp.route("/staff")
@login_required(roles=ADMIN)
def staff():
    """Staff with status, department and customer counts, and the sync panel."""
    query, errors = load_query(StaffQuery)
    principal = current_principal()
    page = staff_service.search(principal, **query)
    counts = staff_service.customer_counts(principal.corp_id, [s.id for s in page.items])
    return render_template(
        "console/staff/list.html",
        page=page,
        counts=counts,
        departments=staff_service.department_names(principal.corp_id),
        filters=request.args,
        errors=errors,
        statuses=StaffStatus,
        progress=sync.progress_of(principal.corp_id),
    ), (422 if errors else 200)


@bp.route("/staff/sync", methods=["POST"])
@login_required(roles=ADMIN)
def staff_sync():
    """Queue a full sync with WeCom (one at a time); its progress shows on the staff page."""
    principal = current_principal()
    if sync.enqueue_sync(principal.corp_id, principal.actor):
        flash("Sync queued; progress shows below.", "success")
    else:
        flash("A sync is already under way.", "info")
    return redirect(url_for("console.staff"))


@bp.route("/staff/sync/progress")
@login_required(roles=ADMIN)
def staff_sync_progress():
    """The sync progress fragment (polled by console.js while a sync runs)."""
    return render_template("console/staff/_sync_progress.html", progress=sync.progress_of(current_principal().corp_id))


@bp.route("/staff/<int:staff_id>/handover", methods=["GET", "POST"])
@login_required(roles=ADMIN)
def staff_handover(staff_id: int):
    """Start a hand-over of this rep's customers: preview the plan (dry run), then start it."""
    rep = staff_service.get(current_principal(), staff_id)
    default_kind = HandoverKind.resigned if rep.status == StaffStatus.resigned else HandoverKind.on_the_job
    if request.method == "GET":
        values = {"kind": default_kind.value, "strategy": "policy", "include_group_chats": ""}
        return _form(rep, values, {}, None)
    values = request.form.to_dict()
    data, errors = load_form(HandoverCreateSchema, _to_body(rep.userid, values))
    preview = None
    if not errors:
        try:
            if request.form.get("action") == "start":
                created = handover.create(current_principal(), handover.Request(**data))
                flash(f"Hand-over #{created.id} created ({created.status.value}).", "success")
                return redirect(url_for("console.handovers_detail", handover_id=created.id))
            preview = handover.dry_run(current_principal(), handover.Request(**data))
        except ApiError as exc:
            errors = flatten_errors(exc.fields) if exc.fields else {"_schema": [exc.message]}
    errors = fold_errors(fold_errors(errors, "plan"), "customer_ids")
    return _form(rep, values, errors, preview, status=422 if errors else 200)


def _form(rep, values: dict, errors: dict, preview, status: int = 200):
    active = staff_service.search(current_principal(), page=1, per_page=1000, status=StaffStatus.active).items
    return render_template(
        "console/staff/handover.html",
        rep=rep,
        v=values,
        errors=errors,
        preview=preview,
        preview_rows=PREVIEW_ROWS,
        reps=[s for s in active if s.id != rep.id],
        kinds=HandoverKind,
    ), status


def _ids(text: str) -> list:
    # Numbers become ints (the schema is strict); anything else goes on as typed so the schema
    # names it "not a valid integer" beside the field.
    return [int(part) if part.isdigit() else part for part in re.split(r"[\s,]+", text.strip()) if part]


def _to_body(userid: str, values: dict) -> dict:
    """The API body (HandoverCreateSchema) the form stands for."""
    body = {"handover_userid": userid}
    for key in ("kind", "strategy", "successor_userid", "transfer_message", "group_chat_owner_userid"):
        if values.get(key, "").strip():
            body[key] = values[key].strip()
    if values.get("include_group_chats") in ("true", "false"):
        body["include_group_chats"] = values["include_group_chats"]
    if values.get("customer_ids", "").strip():
        body["customer_ids"] = _ids(values["customer_ids"])
    if values.get("plan", "").strip():
        # One "customer_id takeover_userid" per line.
        body["plan"] = []
        for line in values["plan"].strip().splitlines():
            parts = line.split()
            if parts:
                customer = int(parts[0]) if parts[0].isdigit() else parts[0]
                body["plan"].append({"customer_id": customer, "takeover_userid": parts[1] if len(parts) > 1 else ""})
    return body
