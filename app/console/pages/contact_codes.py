"""Contact codes: list, the full rule form, pause / resume / archive, posters, stats."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, flash, redirect, render_template, request, url_for

from app.console import bp
from app.console.auth import current_principal, login_required
from app.console.forms import (
    drop_blank_rows,
    flatten_errors,
    fold_errors,
    form_data,
    load_form,
    load_query,
    page_arg,
)
from app.errors import ApiError
from app.models import CodeMode, CodeStatus, CodeStrategy, StaffStatus
from app.schemas.contact_code import (
    ContactCodeCreateSchema,
    ContactCodeQuery,
    ContactCodeUpdateSchema,
    StatsQuery,
)
from app.services import staff as staff_service
from app.services.contact_codes import codes, stats
from app.services.contact_codes import poster as posters

ADMIN = ("admin",)
WEEKDAYS = ((1, "Mon"), (2, "Tue"), (3, "Wed"), (4, "Thu"), (5, "Fri"), (6, "Sat"), (7, "Sun"))
ATTACHMENT_FIELDS = ("title", "url", "desc", "picurl", "media_id", "pic_url", "pic_media_id", "appid", "page")
# Spare blank rows under each repeatable part, so the form works without JavaScript too.
SPARE_ROWS = 2
# The detail page's lists (customers brought, assignments), each paged on its own.
LIST_PER_PAGE = 20
DEFAULT_TZ = "Asia/Shanghai"
SLOT_TEXT = re.compile(r"^\s*(\S+?)\s*-\s*(\S+)\s*$")


@bp.route("/contact-codes")
@login_required()
def contact_codes():
    """Codes the signed-in user may read, filtered by status, mode or text."""
    query, errors = load_query(ContactCodeQuery)
    page = codes.search(current_principal(), **query)
    return render_template(
        "console/contact_codes/list.html",
        page=page,
        filters=request.args,
        errors=errors,
        statuses=CodeStatus,
        modes=CodeMode,
    ), (422 if errors else 200)


@bp.route("/contact-codes/new", methods=["GET", "POST"])
@login_required(roles=ADMIN)
def contact_codes_new():
    """Create a code with its full rule form."""
    if request.method == "GET":
        return _form_page(None, _blank_values(), {})
    values = _posted_values(creating=True)
    data, errors = load_form(ContactCodeCreateSchema, _to_body(values, creating=True))
    if not errors:
        try:
            code = codes.create(current_principal(), data)
        except ApiError as exc:
            errors = _service_errors(exc)
        else:
            flash(f"Contact code “{code.name}” created.", "success")
            return redirect(url_for("console.contact_codes_detail", code_id=code.id))
    return _form_page(None, values, _fold(errors), status=422)


@bp.route("/contact-codes/<int:code_id>")
@login_required()
def contact_codes_detail(code_id: int):
    """One code: its rules, pool and links to the poster and the stats; for admins also the
    customers it brought and every assignment it made, each list paged on its own."""
    principal = current_principal()
    code = codes.get(principal, code_id)
    landing = url_for("landing.land", state=code.state, _external=True)
    lists = {}
    if principal.is_admin:  # other reps' customers: admins only, as in the API
        lists = {
            "adds": codes.adds(principal, code_id, page=page_arg("adds_page"), per_page=LIST_PER_PAGE),
            "assignments": codes.assignments(
                principal, code_id, page=page_arg("assignments_page"), per_page=LIST_PER_PAGE
            ),
            "reps": {member.staff_id: member.staff for member in code.members},
        }
    return render_template(
        "console/contact_codes/detail.html", code=code, landing_url=landing, weekdays=WEEKDAYS, **lists
    )


@bp.route("/contact-codes/<int:code_id>/edit", methods=["GET", "POST"])
@login_required(roles=ADMIN)
def contact_codes_edit(code_id: int):
    """Change a code's rules; WeCom follows."""
    code = codes.get(current_principal(), code_id)
    if request.method == "GET":
        return _form_page(code, _values_of(code), {})
    values = _posted_values(creating=False)
    data, errors = load_form(ContactCodeUpdateSchema, _to_body(values, creating=False))
    if not errors:
        try:
            codes.update(current_principal(), code_id, data)
        except ApiError as exc:
            errors = _service_errors(exc)
        else:
            flash("Changes saved.", "success")
            return redirect(url_for("console.contact_codes_detail", code_id=code_id))
    return _form_page(codes.get(current_principal(), code_id), values, _fold(errors), status=422)


@bp.route("/contact-codes/<int:code_id>/<any(pause, resume, archive):action>", methods=["POST"])
@login_required(roles=ADMIN)
def contact_codes_status(code_id: int, action: str):
    """Pause, resume or archive a code."""
    command = {"pause": codes.pause, "resume": codes.resume, "archive": codes.archive}[action]
    code = command(current_principal(), code_id)
    flash(f"“{code.name}” is {code.status.value}.", "success")
    return redirect(url_for("console.contact_codes_detail", code_id=code_id))


@bp.route("/contact-codes/<int:code_id>/poster.png")
@login_required()
def contact_codes_poster(code_id: int):
    """The printable poster (PNG)."""
    code = codes.get(current_principal(), code_id)
    drawn = posters.render(code, url_for("landing.land", state=code.state, _external=True))
    filename = f"contact-code-{code.id}-poster.png"
    return Response(drawn.png, mimetype="image/png", headers={"Content-Disposition": f'inline; filename="{filename}"'})


@bp.route("/contact-codes/<int:code_id>/stats")
@login_required(roles=ADMIN)
def contact_codes_stats(code_id: int):
    """Scans, adds, welcomes sent, lost within 7 days and net, per day and per rep."""
    code = codes.get(current_principal(), code_id)
    query, errors = load_query(StatsQuery)
    try:
        report = stats.report(current_principal(), code_id, query.get("date_from"), query.get("date_to"))
    except ApiError as exc:
        errors = {**errors, **(exc.fields or {})}
        report = stats.report(current_principal(), code_id)
    return render_template(
        "console/contact_codes/stats.html", code=code, report=report, errors=errors, filters=request.args
    ), (422 if errors else 200)


@bp.route("/contact-codes/<int:code_id>/stats.csv")
@login_required(roles=ADMIN)
def contact_codes_stats_csv(code_id: int):
    """The stats as CSV, one row per day and rep."""
    query, errors = load_query(StatsQuery)
    if errors:
        raise ApiError(400, "validation_error", "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
    data = stats.report(current_principal(), code_id, query.get("date_from"), query.get("date_to"))
    filename = f"contact-code-{code_id}-{data['from'].isoformat()}-{data['to'].isoformat()}.csv"
    return Response(
        stats.to_csv(data), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


# -- the rule form ---------------------------------------------------------------------------
# The form's values are the posted strings, nested (members.0.userid → values["members"][0]
# ["userid"]); the same structure fills the form from a stored code, so re-rendering after an
# error and editing share one template.
def _form_page(code, values: dict, errors: dict, status: int = 200):
    reps = staff_service.search(current_principal(), page=1, per_page=1000, status=StaffStatus.active).items
    for rows, spare in (
        (values["members"], SPARE_ROWS),
        (values["schedule"]["slots"], SPARE_ROWS),
        (values["schedule"]["exceptions"], 1),
        (values["welcome"]["attachments"], 1),
        (values["tags"], SPARE_ROWS),
    ):
        rows.extend({} for _ in range(spare))
    return render_template(
        "console/contact_codes/form.html",
        code=code,
        v=values,
        errors=errors,
        reps=reps,
        modes=CodeMode,
        strategies=CodeStrategy,
        weekdays=WEEKDAYS,
    ), status


def _blank_values() -> dict:
    return {
        "mode": CodeMode.wecom.value,
        "strategy": CodeStrategy.weighted_round_robin.value,
        "skip_verify": "true",
        "members": [],
        "schedule": {"enabled": "false", "timezone": DEFAULT_TZ, "slots": [], "exceptions": []},
        "welcome": {"text": "", "attachments": []},
        "tags": [],
    }


def _values_of(code) -> dict:
    """The form's values for a stored code."""
    schedule = code.schedule or {}
    tz = schedule.get("timezone") or DEFAULT_TZ
    welcome = code.welcome or {}
    return {
        "name": code.name,
        "channel": code.channel,
        "mode": code.mode.value,
        "strategy": code.strategy.value,
        "state": code.state,
        "skip_verify": "true" if code.skip_verify else "false",
        "expires_at": code.expires_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M") if code.expires_at else "",
        "members": [
            {
                "userid": m.staff.userid,
                "weight": str(m.weight),
                "daily_cap": "" if m.daily_cap is None else str(m.daily_cap),
                "total_cap": "" if m.total_cap is None else str(m.total_cap),
                "backup": "true" if m.backup else "false",
                "paused": "true" if m.paused else "false",
            }
            for m in code.members
        ],
        "schedule": {
            "enabled": "true" if code.schedule else "false",
            "timezone": tz,
            "slots": [
                {"weekdays": [str(d) for d in s["weekdays"]], "start": s["start"], "end": s["end"]}
                for s in schedule.get("slots") or []
            ],
            "exceptions": [
                {"date": e["date"], "slots": ", ".join(f"{s['start']}-{s['end']}" for s in e.get("slots") or [])}
                for e in schedule.get("exceptions") or []
            ],
        },
        "welcome": {
            "text": welcome.get("text", ""),
            "attachments": [
                {"type": a.get("type", ""), **{k: a.get(k, "") for k in ATTACHMENT_FIELDS}}
                for a in welcome.get("attachments") or []
            ],
        },
        "tags": [{"name": t.get("name", ""), "group_name": t.get("group_name", "")} for t in code.tags or []],
    }


def _posted_values(creating: bool) -> dict:
    """The posted form as nested strings, spare blank rows dropped."""
    posted = form_data(request.form, lists=("schedule.slots.*.weekdays",))
    values = _blank_values() | {k: v for k, v in posted.items() if k not in ("schedule", "welcome")}
    schedule = posted.get("schedule") or {}
    welcome = posted.get("welcome") or {}
    values["members"] = drop_blank_rows(posted.get("members"), "userid", "weight", "daily_cap", "total_cap")
    values["schedule"] = {
        "enabled": schedule.get("enabled", "false"),
        "timezone": schedule.get("timezone") or DEFAULT_TZ,
        "slots": drop_blank_rows(schedule.get("slots"), "start", "end"),
        "exceptions": drop_blank_rows(schedule.get("exceptions"), "date", "slots"),
    }
    values["welcome"] = {
        "text": welcome.get("text", ""),
        "attachments": drop_blank_rows(welcome.get("attachments"), *ATTACHMENT_FIELDS),
    }
    values["tags"] = drop_blank_rows(posted.get("tags"), "name")
    if not creating:
        values.pop("mode", None)
        values.pop("state", None)
    return values


def _to_body(values: dict, creating: bool) -> dict:
    """The API body the form's values stand for (what ContactCode*Schema loads)."""
    if creating:
        keys = ("name", "channel", "strategy", "skip_verify", "mode", "state")
        body = {k: values[k] for k in keys if values.get(k) not in (None, "")}
    else:  # every rule is on the form: a field emptied is an error, not "leave as it was"
        body = {k: values.get(k, "") for k in ("name", "channel", "strategy")}
        body["skip_verify"] = values.get("skip_verify", "false")
    body["members"] = [{k: v for k, v in m.items() if v not in (None, "")} for m in values["members"]]
    schedule = values["schedule"]
    tz = schedule["timezone"]
    if schedule["enabled"] == "true":
        body["schedule"] = {
            "timezone": tz,
            "slots": [{k: v for k, v in s.items() if v not in (None, "")} for s in schedule["slots"]],
            "exceptions": [_exception(e) for e in schedule["exceptions"]],
        }
    else:
        body["schedule"] = None
    welcome = values["welcome"]
    if welcome["text"] or welcome["attachments"]:
        body["welcome"] = {
            "text": welcome["text"],
            "attachments": [{k: v for k, v in a.items() if v not in (None, "")} for a in welcome["attachments"]],
        }
    else:
        body["welcome"] = None
    body["tags"] = [{k: v for k, v in t.items() if v not in (None, "")} for t in values["tags"]]
    body["expires_at"] = _aware(values.get("expires_at"), tz)
    return body


def _exception(entry: dict) -> dict:
    """A date exception; its slots are written as "09:00-12:00, 14:00-18:00" (empty: closed)."""
    slots = []
    for part in (entry.get("slots") or "").split(","):
        if not part.strip():
            continue
        match = SLOT_TEXT.match(part)
        slots.append({"start": match.group(1), "end": match.group(2)} if match else {"start": part.strip()})
    return {"date": entry.get("date", ""), "slots": slots}


def _aware(text: str | None, tz: str) -> str | None:
    """A datetime-local value ("2026-12-31T18:00") as an aware ISO time in the code's zone;
    anything else goes to the schema as is, which names the error."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).isoformat()
    except (ValueError, ZoneInfoNotFoundError):
        return text


def _fold(errors: dict) -> dict:
    # An exception's slots are one text field: its slot errors show beside it.
    for key in list(errors):
        match = re.match(r"^(schedule\.exceptions\.\d+\.slots)\.", key)
        if match:
            errors = fold_errors(errors, match.group(1))
    return errors


def _service_errors(exc: ApiError) -> dict:
    """A service's refusal: its field errors in place, anything else at the top of the form."""
    if exc.fields:
        return flatten_errors(exc.fields)
    return {"_schema": [exc.message]}
