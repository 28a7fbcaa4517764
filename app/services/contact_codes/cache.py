"""What every scan and every add reads about a code, kept in each process's memory.

A scan must cost next to nothing but the atomic pick (and an add as little as possible inside
WeCom's 20 s), so the code and its pool are not read from the database each time: a snapshot is
kept per process and checked against a version counter in Redis (one GET), which every change
to the code bumps after its commit. A snapshot also expires after ``MAX_AGE`` seconds, which
bounds staleness from changes made elsewhere (a staff sync marking a rep resigned, a rename).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db, get_redis
from app.models import CodeMode, CodeStatus, CodeStrategy, ContactCode, ContactCodeMember, StaffStatus

from .aftercommit import after_commit

MAX_AGE = 30.0


@dataclass(frozen=True)
class StaffView:
    userid: str
    name: str
    status: StaffStatus


@dataclass(frozen=True)
class MemberView:
    staff_id: int
    staff: StaffView
    weight: int
    daily_cap: int | None
    total_cap: int | None
    backup: bool
    paused: bool
    config_id: str | None
    qr_code: str | None


@dataclass(frozen=True)
class CodeView:
    """The fields of a code (and its members) that availability and the pick read."""

    id: int
    corp_id: int
    name: str
    channel: str
    state: str
    mode: CodeMode
    strategy: CodeStrategy
    status: CodeStatus
    schedule: dict | None
    expires_at: datetime | None
    config_id: str | None
    qr_code: str | None
    welcome: dict | None
    tag_ids: tuple[str, ...]
    wecom_users: tuple[str, ...]
    members: tuple[MemberView, ...]


def _version_key(corp_id: int, state: str) -> str:
    return f"contact_code:version:{corp_id}:{state}"


def bump(corp_id: int, state: str) -> None:
    """Invalidate every process's snapshot of the code (call after the change committed)."""
    get_redis().incr(_version_key(corp_id, state))


def bump_after_commit(code: ContactCode) -> None:
    after_commit(bump, code.corp_id, code.state)


def _snapshot(code: ContactCode) -> CodeView:
    return CodeView(
        id=code.id,
        corp_id=code.corp_id,
        name=code.name,
        channel=code.channel,
        state=code.state,
        mode=code.mode,
        strategy=code.strategy,
        status=code.status,
        schedule=code.schedule,
        expires_at=code.expires_at,
        config_id=code.config_id,
        qr_code=code.qr_code,
        welcome=code.welcome,
        tag_ids=tuple(code.tag_ids),
        wecom_users=tuple(code.wecom_users),
        members=tuple(
            MemberView(
                staff_id=m.staff_id,
                staff=StaffView(m.staff.userid, m.staff.name, m.staff.status),
                weight=m.weight,
                daily_cap=m.daily_cap,
                total_cap=m.total_cap,
                backup=m.backup,
                paused=m.paused,
                config_id=m.config_id,
                qr_code=m.qr_code,
            )
            for m in code.members
        ),
    )


def by_state(corp_id: int, state: str) -> CodeView | None:
    """The code answering ``state``, from this process's snapshot while it is current."""
    cache: dict = current_app.extensions.setdefault("contact_code_views", {})
    version = get_redis().get(_version_key(corp_id, state))
    entry = cache.get((corp_id, state))
    if entry is not None and entry[1] == version and time.monotonic() - entry[2] < MAX_AGE:
        return entry[0]
    code = db.session.scalar(
        select(ContactCode)
        .where(ContactCode.corp_id == corp_id, ContactCode.state == state)
        .options(selectinload(ContactCode.members).selectinload(ContactCodeMember.staff))
    )
    # A miss is kept too: most adds carry another feature's state (a card, a hand-made way),
    # and creating a code bumps its version, so a cached miss never hides a new code.
    view = _snapshot(code) if code is not None else None
    # The version was read before the load: a bump racing the load leaves the version newer, so the next scan reloads.
    cache[(corp_id, state)] = (view, version, time.monotonic())
    return view
