"""Declared API operations: each route names its schemas and roles once, and from that one
declaration come authentication, input validation, output shaping and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import Blueprint, g, jsonify, request
from marshmallow import Schema

from app.errors import ApiError
from app.services import auth
from app.services.auth import Principal


@dataclass(frozen=True)
class Operation:
    rule: str
    method: str
    endpoint: str
    summary: str
    tag: str
    query: type[Schema] | None
    body: type[Schema] | None
    response: type[Schema] | None
    many: bool
    status: int
    roles: tuple[str, ...]  # empty = no admin-API role (public, or the blueprint's own session)
    produces: str | None = None  # the media type of a file answer (PNG, CSV); None = JSON


    @property
    def public(self) -> bool:
        return not self.roles


class ApiBlueprint(Blueprint):
    """A Blueprint whose routes are declared with :meth:`operation`."""

    def __init__(
        self,
        name: str,
        import_name: str,
        tag: str,
        *,
        session_scheme: str | None = None,
        public: frozenset[str] = frozenset(),
        **kwargs,
    ):
        super().__init__(name, import_name, **kwargs)
        self.tag = tag
        # A blueprint with sessions of its own (the mini-program's) names their OpenAPI
        # security scheme, and the endpoints reachable without one.
        self.session_scheme = session_scheme
        self.public = public
        self.operations: list[Operation] = []

    def operation(
        self,
        rule: str,
        method: str,
        *,
        query: type[Schema] | None = None,
        body: type[Schema] | None = None,
        response: type[Schema] | None = None,
        many: bool = False,
        status: int = 200,
        roles: tuple[str, ...] = ("admin",),
    ) -> Callable:
        """Register a view. It receives URL args, plus ``query``/``body`` as loaded dicts."""

        def decorator(fn: Callable) -> Callable:
            op = Operation(
                rule=rule,
                method=method,
                endpoint=f"{self.name}.{fn.__name__}",
                summary=(fn.__doc__ or fn.__name__).strip().splitlines()[0],
                tag=self.tag,
                query=query,
                body=body,
                response=response,
                many=many,
                status=status,
                roles=roles,
            )
            self.operations.append(op)

            @wraps(fn)
            def view(**kwargs):
                if op.roles:
                    g.principal = auth.principal_from_header(request.headers.get("Authorization"), op.roles)
                if op.query:
                    kwargs["query"] = op.query().load(request.args.to_dict())
                if op.body:
                    kwargs["body"] = op.body().load(_json_object())
                result = fn(**kwargs)
                if op.response is None:
                    return "", 204 if op.status == 200 else op.status
                return jsonify(op.response(many=op.many).dump(result)), op.status

            self.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
            return view

        return decorator


def _json_object() -> dict:
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return data


def current_principal() -> Principal:
    return g.principal
