"""Opaque cursors for WeCom's cursor-paginated APIs.

A cursor encodes which listing it belongs to and the offset of the next item, so a cursor
from one API handed to another is refused instead of silently paging the wrong list.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TypeVar

from .errors import invalid

T = TypeVar("T")


def encode_cursor(kind: str, offset: int) -> str:
    """Cursor pointing at ``offset`` in the listing ``kind``."""
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: str) -> int:
    """Offset stored in ``cursor`` (0 when empty); 40058 when it is not one of ours for ``kind``."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got_kind, offset = raw.rsplit(":", 1)
        value = int(offset)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("cursor") from exc
    if got_kind != kind or value < 0:
        raise invalid("cursor")
    return value


def paginate(items: Sequence[T], cursor: str | None, limit: int, kind: str) -> tuple[list[T], str]:
    """One page of ``items`` and the next cursor ("" when this is the last page)."""
    start = decode_cursor(cursor, kind)
    page = list(items[start : start + limit])
    end = start + len(page)
    return page, (encode_cursor(kind, end) if end < len(items) else "")
