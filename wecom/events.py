"""Parsing decrypted callback XML and computing its dedupe key.

wechatpy 2.0 parses most external-contact events but not ``change_contact``, and its objects
hide fields we need (and would change under us with a release); the callback XML is flat, so
a dict of its top-level elements is all the app needs.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET  # noqa: S405 - DOCTYPEs are refused before parsing (see parse_xml)


class MalformedEvent(ValueError):
    """The body or the decrypted payload is not the XML WeCom sends."""


def parse_xml(data: bytes | str) -> dict[str, str]:
    """Flat ``<xml>`` document → {tag: text}. Nested elements keep their inner XML as text."""
    raw = data.encode() if isinstance(data, str) else data
    # No DOCTYPE means no entity tricks (billion laughs, external entities): WeCom sends none.
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise MalformedEvent("DOCTYPE and entities are not accepted")
    try:
        root = ET.fromstring(raw)  # noqa: S314 - see the DOCTYPE check above
    except ET.ParseError as exc:
        raise MalformedEvent(f"not XML: {exc}") from exc
    if root.tag != "xml":
        raise MalformedEvent("the root element is not <xml>")
    fields = {}
    for child in root:
        if len(child):
            fields[child.tag] = "".join(ET.tostring(c, encoding="unicode") for c in child)
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields


def dedupe_key(corp_id: str, fields: dict[str, str]) -> str:
    """A key equal for WeCom's retries of one event and different for any two real events.

    Events carry no id, and WeCom re-sends the same plaintext when it retries. Keying on a
    few fields (CreateTime + UserID) silently drops real events: two customers scanning one
    code in the same second differ only in ExternalUserID and WelcomeCode. So the key covers
    every field of the event: retries match exactly, distinct events cannot collide.
    """
    canonical = json.dumps({"corp": corp_id, **fields}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_type(fields: dict[str, str]) -> tuple[str, str]:
    """(Event, ChangeType) — the dispatch key."""
    return fields.get("Event", ""), fields.get("ChangeType", "")
