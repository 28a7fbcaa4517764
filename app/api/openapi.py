"""GET /openapi.json, generated from the declared operations and their marshmallow schemas."""

from __future__ import annotations

import re
from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, jsonify

from app.api.routing import ApiBlueprint, Operation
from app.schemas.common import ErrorSchema

bp = Blueprint("api_openapi", __name__)

_ERRORS = {
    400: "Malformed request",
    401: "Missing, invalid, expired or revoked token",
    403: "Your role may not do this",
    404: "Not found",
    422: "Invalid fields (see error.fields)",
}


def _path(rule: str) -> tuple[str, list[dict]]:
    """Flask's ``/a/<int:x>`` → OpenAPI's ``/a/{x}`` and its path parameters."""
    params = []

    def repl(m):
        converter, name = m.group(1) or "string", m.group(2)
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if converter == "int" else "string"},
            }
        )
        return "{" + name + "}"

    return re.sub(r"<(?:(\w+):)?(\w+)>", repl, rule), params


def _operation(op: Operation, path_params: list[dict], blueprint: ApiBlueprint) -> dict:
    spec: dict = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": op.endpoint.replace(".", "_"),
        "parameters": list(path_params),
        "responses": {},
    }
    if op.query:
        spec["parameters"].append({"in": "query", "schema": op.query})
    if op.body:
        spec["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    if op.produces:
        spec["responses"][str(op.status)] = {
            "description": "OK",
            "content": {op.produces: {"schema": {"type": "string", "format": "binary"}}},
        }
    elif op.response:
        schema = {"type": "array", "items": op.response} if op.many else op.response
        spec["responses"][str(op.status)] = {"description": "OK", "content": {"application/json": {"schema": schema}}}
    else:
        spec["responses"]["204" if op.status == 200 else str(op.status)] = {"description": "Done"}
    codes = [422] if (op.query or op.body) else []
    codes += [400] if op.body else []
    scheme = blueprint.session_scheme
    needs_session = scheme is not None and op.endpoint not in blueprint.public
    codes += [401, 403] if not op.public else [401] if needs_session else []
    codes += [404] if path_params else []
    for code in sorted(codes):
        spec["responses"][str(code)] = {
            "description": _ERRORS[code],
            "content": {"application/json": {"schema": "Error"}},
        }
    if not op.public:
        spec["security"] = [{"bearer": []}]
    elif needs_session:
        spec["security"] = [{scheme: []}]
    return spec


@cache
def build_spec() -> dict:
    from app.api import documented

    spec = APISpec(title="WeCom SCRM API", version="1", openapi_version="3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "mpSession",
        {"type": "http", "scheme": "bearer", "description": "a mini-program session or device token (/mp/v1)"},
    )
    spec.components.schema("Error", schema=ErrorSchema)
    paths: dict[str, dict] = {}
    for prefix, blueprint in documented():
        for op in blueprint.operations:
            path, params = _path(prefix + op.rule)
            paths.setdefault(path, {})[op.method.lower()] = _operation(op, params, blueprint)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(build_spec())
