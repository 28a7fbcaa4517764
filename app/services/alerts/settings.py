"""The corp's alert settings, kept in ``Corp.settings["alerts"]``:

- ``admin_userids``: the WeCom userids told about lost customers and failures (the admins);
- ``link_base_url``: prefixed to the sidebar paths alert messages link to (WeCom needs an
  absolute URL; empty keeps the path alone, which only the simulator accepts);
- ``burst_limit`` / ``burst_seconds``: at most this many messages to one member in that many
  seconds; what arrives beyond them waits and goes out as one digest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import select

from app.errors import ApiError
from app.extensions import db
from app.models import Corp
from app.services import audit
from app.services.auth import Principal

DEFAULTS = {"admin_userids": [], "link_base_url": "", "burst_limit": 3, "burst_seconds": 10}


@dataclass(frozen=True)
class AlertSettings:
    admin_userids: list[str]
    link_base_url: str
    burst_limit: int
    burst_seconds: int


def for_corp(corp_id: int) -> AlertSettings:
    """The corp's alert settings over the defaults."""
    corp = db.session.get(Corp, corp_id)
    stored = (corp.settings or {}).get("alerts", {}) if corp else {}
    merged = {**DEFAULTS, **{k: v for k, v in stored.items() if k in DEFAULTS}}
    return AlertSettings(
        admin_userids=list(merged["admin_userids"]),
        link_base_url=str(merged["link_base_url"]),
        burst_limit=int(merged["burst_limit"]),
        burst_seconds=int(merged["burst_seconds"]),
    )


def get(principal: Principal) -> AlertSettings:
    """The settings of the caller's corp (admins)."""
    _require_admin(principal)
    return for_corp(principal.corp_id)


def update(principal: Principal, changes: dict) -> AlertSettings:
    """Change some settings (admins); audited. The corp row is locked so the read-modify-write
    of its JSON settings cannot lose a concurrent change."""
    _require_admin(principal)
    corp = db.session.scalar(
        select(Corp).where(Corp.id == principal.corp_id).with_for_update().execution_options(populate_existing=True)
    )
    current = asdict(for_corp(principal.corp_id))
    merged = {**current, **changes}
    if "admin_userids" in changes:
        merged["admin_userids"] = list(dict.fromkeys(changes["admin_userids"]))
    corp.settings = {**(corp.settings or {}), "alerts": merged}
    audit.record(principal.corp_id, principal.actor, "alerts.settings", "corp", principal.corp_id, data=changes)
    db.session.commit()
    return for_corp(principal.corp_id)


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "your role may not do this")
