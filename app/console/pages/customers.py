"""Customers: search and filter, the 360 page (notes, tags, timeline), merge and unmerge, and
the merge suggestions."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from marshmallow import Schema, fields, validate

from app.console import bp
from app.console.auth import current_principal, login_required
from app.console.forms import FORM_ERRORS, load_form, load_query
from app.errors import ApiError
from app.models import IntentLevel, StaffStatus, SuggestionStatus
from app.schemas.customer import CustomerQuery
from app.schemas.oneid import DecisionBody, Reason, SuggestionQuery, TimelineQuery
from app.services import customer360, customers, merge, staff, tags, timeline

ADMIN = ("admin",)
MERGE_CANDIDATES = 10


class MergeForm(Schema):
    other_id = fields.Integer(required=True, validate=validate.Range(min=1))
    reason = fields.String(required=True, validate=Reason)


class UnmergeForm(Schema):
    merge_id = fields.Integer(required=True, validate=validate.Range(min=1))
    reason = fields.String(required=True, validate=Reason)


class MergePickQuery(Schema):
    q = fields.String(validate=validate.Length(min=1, max=64))
    other = fields.Integer(validate=validate.Range(min=1))


def _errors(exc: ApiError) -> dict[str, list[str]]:
    """A service's refusal as form errors: its field errors in place, else one form error."""
    return exc.fields or {FORM_ERRORS: [exc.message]}


# -- the list ----------------------------------------------------------------------------------


@bp.route("/customers", endpoint="customers")
@login_required()
def customers_list():
    """Search and filter the customers the caller may see, paginated."""
    principal = current_principal()
    values = request.args.to_dict()
    query, errors = load_query(CustomerQuery)
    status = 422 if errors else 200
    result = customers.search(principal, **query)
    reps = staff.search(principal, page=1, per_page=200, status=StaffStatus.active).items if principal.is_admin else []
    return (
        render_template(
            "console/customers/list.html",
            result=result,
            values=values,
            errors=errors,
            corp_tags=tags.corp_tags(principal),
            reps=reps,
            levels=[str(level) for level in IntentLevel],
            filters={k: v for k, v in values.items() if k not in ("page", "per_page")},
        ),
        status,
    )


# -- the 360 page -----------------------------------------------------------------------------


def _detail(customer_id: int, status: int = 200, **forms):
    """Render the 360 page; ``forms`` carries a re-rendered form's values and errors."""
    principal = current_principal()
    view = customer360.view(principal, customer_id)  # 404 unless visible, merged ids included
    if request.method == "GET" and view["customer"]["id"] != customer_id:
        return redirect(url_for("console.customers_detail", customer_id=view["customer"]["id"]))
    query, query_errors = load_query(TimelineQuery)
    entries = timeline.for_customer(principal, view["customer"]["id"], **query)
    merges = merge.merges_of(principal, view["customer"]["id"], page=1, per_page=50).items if principal.is_admin else []
    page = render_template(
        "console/customers/detail.html",
        view=view,
        c=view["customer"],
        timeline=entries,
        timeline_errors=query_errors,
        merges=merges,
        corp_tags=tags.corp_tags(principal),
        forms=forms,
    )
    return page, status


@bp.route("/customers/<int:customer_id>")
@login_required()
def customers_detail(customer_id: int):
    """The customer's 360 view; a merged id answers with the survivor's page."""
    return _detail(customer_id)


@bp.route("/customers/<int:customer_id>/notes", methods=["POST"])
@login_required()
def customers_add_note(customer_id: int):
    """Add a note; a bad body re-renders the page with the error under the field."""
    try:
        customer360.add_note(current_principal(), customer_id, request.form.get("body"))
    except ApiError as exc:
        if exc.status != 422:
            raise
        return _detail(customer_id, 422, note={"submitted": request.form, "errors": _errors(exc)})
    flash("Note added.", "success")
    return redirect(url_for("console.customers_detail", customer_id=customer_id, _anchor="notes"))


@bp.route("/customers/<int:customer_id>/notes/<int:note_id>", methods=["POST"])
@login_required()
def customers_edit_note(customer_id: int, note_id: int):
    """Edit a note (its author or an admin)."""
    try:
        customer360.edit_note(current_principal(), note_id, request.form.get("body"))
    except ApiError as exc:
        if exc.status != 422:
            raise
        form = {"note_id": note_id, "submitted": request.form, "errors": _errors(exc)}
        return _detail(customer_id, 422, edit_note=form)
    flash("Note saved.", "success")
    return redirect(url_for("console.customers_detail", customer_id=customer_id, _anchor="notes"))


@bp.route("/customers/<int:customer_id>/tags", methods=["POST"])
@login_required()
def customers_tags(customer_id: int):
    """Add and remove tags on one relation (WeCom first); refusals show beside the form."""
    staff_id = request.form.get("staff_id") or None
    try:
        customer360.set_tags(
            current_principal(),
            customer_id,
            request.form.getlist("add_tag_ids"),
            request.form.getlist("remove_tag_ids"),
            staff_id=staff_id,
        )
    except ApiError as exc:
        if exc.status in (403, 404):
            raise
        form = {"staff_id": staff_id, "submitted": request.form, "errors": _errors(exc)}
        return _detail(customer_id, 422 if exc.status == 422 else exc.status, tags=form)
    flash("Tags saved in WeCom.", "success")
    return redirect(url_for("console.customers_detail", customer_id=customer_id, _anchor="follows"))


# -- merge and unmerge ------------------------------------------------------------------------


@bp.route("/customers/<int:customer_id>/merge", methods=["GET", "POST"])
@login_required(roles=ADMIN)
def customers_merge(customer_id: int):
    """Pick the customer to merge with (search), confirm with a reason, merge."""
    principal = current_principal()
    base = customers.get_detail(principal, customer_id)
    values = request.values.to_dict()
    errors: dict = {}
    status = 200
    if request.method == "POST":
        data, errors = load_form(MergeForm)
        if not errors:
            try:
                result = merge.merge_as(principal, [base.id, data["other_id"]], data["reason"])
            except ApiError as exc:
                errors, status = _errors(exc), 409 if exc.status == 409 else 422
            else:
                flash(f"Merged: customer {result.survivor_id} now holds both records.", "success")
                return redirect(url_for("console.customers_detail", customer_id=result.survivor_id))
        else:
            status = 422
        other_id = values.get("other_id")
        query = {}
    else:
        query, errors = load_query(MergePickQuery)
        status = 422 if errors else 200
        other_id = query.get("other")
    other = None
    if other_id not in (None, ""):
        try:
            other = customers.get_detail(principal, int(other_id))
        except (ApiError, ValueError):
            errors = {**errors, "other_id": ["no such customer"]}
            status = 422
    candidates = []
    if query.get("q"):
        found = customers.search(principal, page=1, per_page=MERGE_CANDIDATES + 1, q=query["q"]).items
        candidates = [c for c in found if c.id != base.id][:MERGE_CANDIDATES]
    return (
        render_template(
            "console/customers/merge.html",
            base=base,
            other=other,
            candidates=candidates,
            values=values,
            errors=errors,
        ),
        status,
    )


@bp.route("/customers/<int:customer_id>/unmerge", methods=["POST"])
@login_required(roles=ADMIN)
def customers_unmerge(customer_id: int):
    """Undo one merge from the customer's merge list."""
    data, errors = load_form(UnmergeForm)
    if not errors:
        try:
            merge.unmerge_as(current_principal(), customer_id, data["merge_id"], data["reason"])
        except ApiError as exc:
            if exc.status == 404:
                raise
            errors = _errors(exc)
        else:
            flash("Merge undone: the records are separate again.", "success")
            return redirect(url_for("console.customers_detail", customer_id=customer_id, _anchor="merges"))
    form = {"merge_id": request.form.get("merge_id"), "submitted": request.form, "errors": errors}
    return _detail(customer_id, 422, unmerge=form)


# -- merge suggestions ------------------------------------------------------------------------


@bp.route("/customers/suggestions")
@login_required(roles=ADMIN)
def customers_suggestions():
    """Weak-signal merge suggestions (open by default), paginated."""
    return _suggestions()


def _suggestions(errors=None, values=None, status=200, suggestion_id=None):
    principal = current_principal()
    query, query_errors = load_query(SuggestionQuery)
    result = merge.list_suggestions(principal, **query)
    ids = {cid for s in result.items for cid in (s.customer_a_id, s.customer_b_id)}
    names = customers.names(principal, ids)
    return (
        render_template(
            "console/customers/suggestions.html",
            result=result,
            names=names,
            statuses=[str(s) for s in SuggestionStatus],
            status_value=request.args.get("status", str(SuggestionStatus.open)),
            query_errors=query_errors,
            errors=errors or {},
            values=values or {},
            failed_id=suggestion_id,
        ),
        422 if query_errors else status,
    )


def _decide(suggestion_id: int, accept: bool):
    principal = current_principal()
    data, errors = load_form(DecisionBody)
    if not errors:
        try:
            if accept:
                result = merge.accept_suggestion(principal, suggestion_id, data["reason"])
            else:
                merge.reject_suggestion(principal, suggestion_id, data["reason"])
        except ApiError as exc:
            if exc.status == 404:
                raise
            errors = _errors(exc)
        else:
            if accept:
                flash(f"Merged into customer {result.survivor_id}.", "success")
            else:
                flash("Suggestion dismissed: the pair will not be suggested again.", "success")
            return redirect(url_for("console.customers_suggestions"))
    return _suggestions(errors=errors, values=request.form, status=422, suggestion_id=suggestion_id)


@bp.route("/customers/suggestions/<int:suggestion_id>/accept", methods=["POST"])
@login_required(roles=ADMIN)
def customers_suggestion_accept(suggestion_id: int):
    """Accept: merge the pair."""
    return _decide(suggestion_id, accept=True)


@bp.route("/customers/suggestions/<int:suggestion_id>/reject", methods=["POST"])
@login_required(roles=ADMIN)
def customers_suggestion_reject(suggestion_id: int):
    """Dismiss: the pair are different people."""
    return _decide(suggestion_id, accept=False)
