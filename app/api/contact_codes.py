"""/contact-codes: channel contact codes — CRUD, pause/resume/archive, poster, stats, records."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Response, g, request, url_for

from app.api.routing import ApiBlueprint, Operation, current_principal
from app.schemas.common import PageQuery, page_of
from app.schemas.contact_code import (
    AddSchema,
    AssignmentSchema,
    ContactCodeCreateSchema,
    ContactCodeQuery,
    ContactCodeSchema,
    ContactCodeUpdateSchema,
    StatsQuery,
    StatsSchema,
)
from app.services import auth
from app.services.contact_codes import codes, stats
from app.services.contact_codes import poster as posters

bp = ApiBlueprint("api_contact_codes", __name__, tag="contact codes")

ONE = "/contact-codes/<int:code_id>"


def _file_operation(rule: str, produces: str, *, query=None, roles: tuple[str, ...] = ("admin",)) -> Callable:
    """A GET that answers a file (PNG, CSV). ``bp.operation`` only answers JSON, so this one
    declares the same Operation (auth, query validation, the OpenAPI entry) and returns the
    view's Response as is."""

    def decorator(fn: Callable) -> Callable:
        bp.operations.append(
            Operation(
                rule=rule,
                method="GET",
                endpoint=f"{bp.name}.{fn.__name__}",
                summary=(fn.__doc__ or fn.__name__).strip().splitlines()[0],
                tag=bp.tag,
                query=query,
                body=None,
                response=None,
                many=False,
                status=200,
                roles=roles,
                produces=produces,
            )
        )

        @wraps(fn)
        def view(**kwargs):
            g.principal = auth.principal_from_header(request.headers.get("Authorization"), roles)
            if query:
                kwargs["query"] = query().load(request.args.to_dict())
            return fn(**kwargs)

        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=["GET"])
        return view

    return decorator


@bp.operation("/contact-codes", "POST", body=ContactCodeCreateSchema, response=ContactCodeSchema, status=201)
def create_code(body):
    """Create a contact code and its WeCom contact way(s)."""
    return codes.create(current_principal(), body)


@bp.operation(
    "/contact-codes", "GET", query=ContactCodeQuery, response=page_of(ContactCodeSchema), roles=("admin", "rep")
)
def list_codes(query):
    """List contact codes (a rep sees the codes they are in)."""
    return codes.search(current_principal(), **query)


@bp.operation(ONE, "GET", response=ContactCodeSchema, roles=("admin", "rep"))
def get_code(code_id):
    """One contact code with its members."""
    return codes.get(current_principal(), code_id)


@bp.operation(ONE, "PATCH", body=ContactCodeUpdateSchema, response=ContactCodeSchema)
def update_code(code_id, body):
    """Change a contact code; WeCom follows."""
    return codes.update(current_principal(), code_id, body)


@bp.operation(ONE + "/pause", "POST", response=ContactCodeSchema)
def pause_code(code_id):
    """Pause: the pool stops taking customers (backups take them)."""
    return codes.pause(current_principal(), code_id)


@bp.operation(ONE + "/resume", "POST", response=ContactCodeSchema)
def resume_code(code_id):
    """Resume a paused code."""
    return codes.resume(current_principal(), code_id)


@bp.operation(ONE + "/archive", "POST", response=ContactCodeSchema)
def archive_code(code_id):
    """Archive: delete the WeCom contact way(s); the code stops working for good."""
    return codes.archive(current_principal(), code_id)


@bp.operation(ONE + "/stats", "GET", query=StatsQuery, response=StatsSchema)
def code_stats(code_id, query):
    """Scans, adds, welcomes sent, lost within 7 days and net, per day and per rep."""
    return stats.report(current_principal(), code_id, query.get("date_from"), query.get("date_to"))


@_file_operation(ONE + "/stats.csv", "text/csv", query=StatsQuery)
def code_stats_csv(code_id, query):
    """The stats as CSV (text/csv), one row per day and rep."""
    data = stats.report(current_principal(), code_id, query.get("date_from"), query.get("date_to"))
    filename = f"contact-code-{code_id}-{data['from'].isoformat()}-{data['to'].isoformat()}.csv"
    return Response(
        stats.to_csv(data), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@_file_operation(ONE + "/poster.png", "image/png", roles=("admin", "rep"))
def poster(code_id):
    """A printable poster (image/png): title, channel, QR, and the rep of a single-rep code."""
    code = codes.get(current_principal(), code_id)
    drawn = posters.render(code, url_for("landing.land", state=code.state, _external=True))
    return Response(drawn.png, mimetype="image/png", headers={"X-Poster-Font": drawn.font})


@bp.operation(ONE + "/assignments", "GET", query=PageQuery, response=page_of(AssignmentSchema))
def code_assignments(code_id, query):
    """Every assignment the code made, with why (strategy, weight, counts, caps, schedule, backup)."""
    return codes.assignments(current_principal(), code_id, **query)


@bp.operation(ONE + "/adds", "GET", query=PageQuery, response=page_of(AddSchema))
def code_adds(code_id, query):
    """Customers the code brought, with the outcome of their welcome and tags."""
    return codes.adds(current_principal(), code_id, **query)
