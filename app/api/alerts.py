"""Behaviour alerts: /alert-rules (CRUD), /alerts (read, filtered), /alert-preferences (a rep's
muted rules and quiet hours), /alert-settings (the corp's admins and pacing)."""

from app.api.routing import ApiBlueprint, current_principal
from app.schemas.alert import (
    AlertQuery,
    AlertRuleCreate,
    AlertRuleSchema,
    AlertRuleUpdate,
    AlertSchema,
    AlertSettingsSchema,
    PreferenceSchema,
    PreferenceUpdate,
)
from app.schemas.common import page_of
from app.services.alerts import queries, quiet, rules, settings

bp = ApiBlueprint("api_alerts", __name__, tag="alerts")

BOTH = ("admin", "rep")


@bp.operation("/alert-rules", "GET", response=AlertRuleSchema, many=True, roles=BOTH)
def list_rules():
    """The corp's alert rules (the shipped defaults included)."""
    return rules.list_rules(current_principal())


@bp.operation("/alert-rules", "POST", body=AlertRuleCreate, response=AlertRuleSchema, status=201)
def create_rule(body):
    """Add an alert rule; unset fields take the defaults of its kind."""
    return rules.create_rule(current_principal(), body)


@bp.operation("/alert-rules/<int:rule_id>", "GET", response=AlertRuleSchema, roles=BOTH)
def get_rule(rule_id):
    """One alert rule."""
    return rules.get_rule(current_principal(), rule_id)


@bp.operation("/alert-rules/<int:rule_id>", "PATCH", body=AlertRuleUpdate, response=AlertRuleSchema)
def update_rule(rule_id, body):
    """Change an alert rule's name, switch, audience, window or params."""
    return rules.update_rule(current_principal(), rule_id, body)


@bp.operation("/alert-rules/<int:rule_id>", "DELETE")
def delete_rule(rule_id):
    """Delete an alert rule an admin added (defaults can only be disabled)."""
    rules.delete_rule(current_principal(), rule_id)


@bp.operation("/alerts", "GET", query=AlertQuery, response=page_of(AlertSchema), roles=BOTH)
def list_alerts(query):
    """Alerts you may see, newest first, filtered by rep, customer, rule, kind or delivery state."""
    return queries.search(current_principal(), **query)


@bp.operation("/alerts/<int:alert_id>", "GET", response=AlertSchema, roles=BOTH)
def get_alert(alert_id):
    """One alert with its deliveries (state, msgid, attempts)."""
    return queries.get(current_principal(), alert_id)


@bp.operation("/alert-preferences/me", "GET", response=PreferenceSchema, roles=BOTH)
def my_preferences():
    """Your own alert preferences (for a user who is a rep)."""
    principal = current_principal()
    return quiet.get(principal, quiet.own_staff_id(principal))


@bp.operation("/alert-preferences/me", "PATCH", body=PreferenceUpdate, response=PreferenceSchema, roles=BOTH)
def update_my_preferences(body):
    """Mute rules, set quiet hours or your time zone."""
    principal = current_principal()
    return quiet.update_preference(principal, quiet.own_staff_id(principal), body)


@bp.operation("/alert-preferences/<int:staff_id>", "GET", response=PreferenceSchema, roles=BOTH)
def staff_preferences(staff_id):
    """A rep's alert preferences (admins: any rep; reps: their own)."""
    return quiet.get(current_principal(), staff_id)


@bp.operation(
    "/alert-preferences/<int:staff_id>", "PATCH", body=PreferenceUpdate, response=PreferenceSchema, roles=BOTH
)
def update_staff_preferences(staff_id, body):
    """Change a rep's alert preferences (admins: any rep; reps: their own)."""
    return quiet.update_preference(current_principal(), staff_id, body)


@bp.operation("/alert-settings", "GET", response=AlertSettingsSchema)
def get_settings():
    """The corp's alert settings: admin recipients, link base, burst pacing."""
    return settings.get(current_principal())


@bp.operation("/alert-settings", "PATCH", body=AlertSettingsSchema, response=AlertSettingsSchema)
def update_settings(body):
    """Change the corp's alert settings."""
    return settings.update(current_principal(), body)
