"""One way to read a console form: flat HTML fields → nested data → a marshmallow schema.

Field names use dots for nesting and numbers for list positions (``pool.0.userid``), so a
form can fill the API's own schemas (``app/schemas/``). Errors come back flattened to the same
names (``{"pool.0.weight": ["…"]}``), which ``_macros.html``'s ``field`` looks up by name, so
every page shows field errors in place the same way; errors of the whole form are under
``_schema``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from flask import request
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

FORM_ERRORS = "_schema"
_INDEX = re.compile(r"\.\d+(?=\.|$)")
# Sent by every form; never part of the data.
_IGNORED = frozenset({"csrf_token", "next", "action"})


def load_form(
    schema: Schema | type[Schema],
    data: Mapping | None = None,
    *,
    lists: Iterable[str] = (),
    **load_kwargs,
) -> tuple[dict | None, dict[str, list[str]]]:
    """Validate ``data`` (default: this request's form, see :func:`form_data`) with ``schema``.

    Answers ``(loaded, {})`` or ``(None, errors)`` with errors flattened to field names.
    ``lists`` names fields that are always lists (multi-selects, checkboxes); ``*`` stands
    for a row number (``schedule.slots.*.weekdays``).
    """
    if data is None:
        data = form_data(request.form, lists=lists)
    instance = schema() if isinstance(schema, type) else schema
    try:
        return instance.load(data, **load_kwargs), {}
    except ValidationError as exc:
        return None, flatten_errors(exc.normalized_messages())


def load_query(schema: type[Schema]) -> tuple[dict, dict[str, list[str]]]:
    """A list page's filters from the query string: ``(query, {})``, or on errors the schema's
    defaults (the first page, unfiltered) and the errors to show beside the filters."""
    query, errors = load_form(schema, form_data(request.args))
    return (schema().load({}), errors) if errors else (query, {})


def page_arg(name: str) -> int:
    """The page number of a second list on a page (``?chats_page=2``; its size is fixed, so no
    schema): 1 when missing or not a positive number."""
    return max(request.args.get(name, 1, type=int), 1)


def form_data(form: MultiDict, *, lists: Iterable[str] = ()) -> dict:
    """The form as nested data. Blank fields are left out, so optional fields stay missing
    instead of failing as "not a valid integer"; list positions keep their order."""
    lists = set(lists)
    nested: dict = {}
    for key in form:
        if key in _IGNORED:
            continue
        values = [v.strip() for v in form.getlist(key)]
        if key in lists or _INDEX.sub(".*", key) in lists:
            _put(nested, key, [v for v in values if v])
            continue
        if not values[-1]:
            continue
        _put(nested, key, values[-1])
    return _lists_from_indexes(nested)


def flatten_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """``{"pool": {0: {"weight": ["x"]}}}`` → ``{"pool.0.weight": ["x"]}``."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, name))
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or FORM_ERRORS: messages}
    if isinstance(messages, list):
        flat = {}
        for i, value in enumerate(messages):
            flat.update(flatten_errors(value, f"{prefix}.{i}" if prefix else str(i)))
        return flat
    return {prefix or FORM_ERRORS: [str(messages)]}


def drop_blank_rows(rows: list[dict] | None, *keys: str) -> list[dict]:
    """The rows in which any of ``keys`` was filled (a form's spare blank rows still post
    their checkboxes' "false")."""
    return [row for row in rows or [] if isinstance(row, dict) and any(row.get(k) not in (None, "") for k in keys)]


def fold_errors(errors: dict[str, list[str]], name: str) -> dict[str, list[str]]:
    """Move the errors of ``name``'s sub-fields onto ``name`` (a field that edits a nested
    value as one text, like "09:00-12:00, 14:00-18:00")."""
    folded = {k: v for k, v in errors.items() if not k.startswith(name + ".")}
    inner = [m for k, v in errors.items() if k.startswith(name + ".") for m in v]
    if inner:
        folded[name] = folded.get(name, []) + inner
    return folded


def _put(target: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):  # "a" and "a.b" both sent: the plain value wins
            return
    target[last] = value


def _lists_from_indexes(node):
    # {"0": {...}, "1": {...}} → [..., ...] in numeric order (gaps from removed rows close up).
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_indexes(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted
