"""Alert rules: list, create (per kind), edit, enable/disable, delete (not the defaults)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError, fields

from app.console import bp
from app.console.auth import current_principal, login_required
from app.console.forms import FORM_ERRORS, flatten_errors, form_data, load_form, load_query
from app.errors import ApiError
from app.models import AlertAudience, AlertKind
from app.schemas.alert import CLICK_ACTIONS, AlertRuleCreate, AlertRuleUpdate, load_params
from app.schemas.common import Page, PageQuery
from app.services.alerts import rules

ADMIN = ("admin",)
# Multi-value form fields (checkboxes), always loaded as lists.
LISTS = ("params.actions",)


class SwitchForm(Schema):
    enabled = fields.Boolean(required=True)


def _page_of(items: list, query: dict) -> Page:
    # The corp has a handful of rules (one default per kind plus the admins' own): they are read
    # whole and paged here.
    page, per_page = query["page"], query["per_page"]
    return Page(items=items[(page - 1) * per_page : page * per_page], total=len(items), page=page, per_page=per_page)


@bp.route("/alert-rules", endpoint="alert_rules")
@login_required()
def alert_rules_list():
    """Every rule of the corp (reps read them; admins change them)."""
    query, errors = load_query(PageQuery)
    result = _page_of(rules.list_rules(current_principal()), query)
    return (
        render_template("console/alert_rules/list.html", result=result, errors=errors, kinds=list(AlertKind)),
        422 if errors else 200,
    )


def _form(kind: AlertKind, rule=None, values=None, errors=None, status=200):
    return (
        render_template(
            "console/alert_rules/form.html",
            kind=kind,
            rule=rule,
            values=values if values is not None else _values(rule),
            errors=errors or {},
            audiences=[str(a) for a in AlertAudience],
            click_actions=CLICK_ACTIONS,
            defaults=rules.DEFAULTS[kind],
        ),
        status,
    )


def _values(rule) -> dict:
    """A rule as the form's flat field values (empty for a new rule: the form shows defaults)."""
    if rule is None:
        return {}
    values = {
        "name": rule.name,
        "audience": str(rule.audience),
        "window_seconds": rule.window_seconds,
        "enabled": rule.enabled,
    }
    for key, value in (rule.params or {}).items():
        values[f"params.{key}"] = value
    return values


def _submitted() -> dict:
    """What was typed, to show again beside the errors (lists stay lists)."""
    # The last value of a name: a checkbox posts a hidden "false" before its "true".
    values = {key: request.form.getlist(key)[-1] for key in request.form if key not in LISTS}
    for key in LISTS:
        values[key] = [v for v in request.form.getlist(key) if v]
    return values


def _load(schema: type[Schema], kind: AlertKind) -> tuple[dict | None, dict]:
    """The form through ``schema``, with the params checked against the kind's own schema
    as well, so their errors show together with the other fields' (the rule schema checks
    params only once every field is valid)."""
    data, errors = load_form(schema, lists=LISTS)
    params = form_data(request.form, lists=LISTS).get("params")
    if params is not None:
        try:
            load_params(kind, params)
        except ValidationError as exc:
            errors = {**errors, **flatten_errors({"params": exc.normalized_messages()})}
    return (None if errors else data), errors


def _service_errors(exc: Exception) -> dict:
    if isinstance(exc, ValidationError):
        return flatten_errors(exc.normalized_messages())
    return exc.fields or {FORM_ERRORS: [exc.message]}


@bp.route("/alert-rules/new", methods=["GET", "POST"])
@login_required(roles=ADMIN)
def alert_rules_new():
    """Pick a kind, then fill in its form (its params are validated per kind)."""
    kind_value = request.values.get("kind")
    if kind_value not in {str(k) for k in AlertKind}:
        if request.method == "POST":
            flash("Choose the kind of rule first.", "error")
        return render_template("console/alert_rules/kinds.html", kinds=list(AlertKind), defaults=rules.DEFAULTS)
    kind = AlertKind(kind_value)
    if request.method == "GET":
        return _form(kind)
    data, errors = _load(AlertRuleCreate, kind)
    if not errors:
        try:
            rule = rules.create_rule(current_principal(), data)
        except (ApiError, ValidationError) as exc:
            errors = _service_errors(exc)
        else:
            flash(f"Rule “{rule.name}” created.", "success")
            return redirect(url_for("console.alert_rules"))
    return _form(kind, values=_submitted(), errors=errors, status=422)


@bp.route("/alert-rules/<int:rule_id>", methods=["GET", "POST"])
@login_required(roles=ADMIN)
def alert_rules_edit(rule_id: int):
    """Change a rule's name, audience, window, switch or params."""
    principal = current_principal()
    rule = rules.get_rule(principal, rule_id)
    if request.method == "GET":
        return _form(rule.kind, rule=rule)
    data, errors = _load(AlertRuleUpdate, rule.kind)
    if not errors:
        try:
            rules.update_rule(principal, rule_id, data)
        except (ApiError, ValidationError) as exc:
            errors = _service_errors(exc)
        else:
            flash(f"Rule “{rule.name}” saved.", "success")
            return redirect(url_for("console.alert_rules"))
    return _form(rule.kind, rule=rule, values=_submitted(), errors=errors, status=422)


@bp.route("/alert-rules/<int:rule_id>/switch", methods=["POST"])
@login_required(roles=ADMIN)
def alert_rules_switch(rule_id: int):
    """Enable or disable a rule."""
    data, errors = load_form(SwitchForm)
    if errors:
        flash("Say whether the rule is to be enabled or disabled.", "error")
        return redirect(url_for("console.alert_rules"))
    rule = rules.update_rule(current_principal(), rule_id, {"enabled": data["enabled"]})
    flash(f"Rule “{rule.name}” {'enabled' if rule.enabled else 'disabled'}.", "success")
    return redirect(url_for("console.alert_rules"))


@bp.route("/alert-rules/<int:rule_id>/delete", methods=["POST"])
@login_required(roles=ADMIN)
def alert_rules_delete(rule_id: int):
    """Delete a rule an admin added (a default can only be disabled: said as a flash)."""
    try:
        rules.delete_rule(current_principal(), rule_id)
    except ApiError as exc:
        if exc.status != 409:
            raise
        flash(exc.message, "error")
    else:
        flash("Rule deleted.", "success")
    return redirect(url_for("console.alert_rules"))
