"""Creating, changing, pausing and archiving contact codes, and reading them.

WeCom is called before our transaction commits, and what WeCom created is deleted again when
the transaction fails, so a failed request leaves neither half a code nor a stray contact way.
Admins manage every code of their corp; a rep may read the codes they are in.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

import requests
from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from wechatpy.exceptions import WeChatClientException

from app.errors import ApiError, Conflict, NotFound
from app.extensions import db
from app.models import (
    CodeMode,
    CodeStatus,
    ContactCode,
    ContactCodeAdd,
    ContactCodeAssignment,
    ContactCodeMember,
    ContactCodeWelcome,
    Customer,
    Staff,
    StaffStatus,
    utcnow,
)
from app.schemas.common import Page
from app.services import audit
from app.services.auth import Principal
from app.services.paging import paginate
from wecom.client import contact_client
from wecom.errors import is_transient

from . import assignment, cache, tags, wecom_sync

log = logging.getLogger(__name__)

STATE_PREFIX = "cc"
STATE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
SCENE_QR = 2
WAY_SINGLE, WAY_MULTI = 1, 2
# del_contact_way on a way WeCom no longer has: already gone, which is what we wanted.
WAY_GONE_ERRCODES = frozenset({40058})


def wecom_error(exc: Exception) -> ApiError:
    """A WeCom failure as the API's answer: 503 when trying again may work, else 502."""
    if is_transient(exc):
        return ApiError(503, "wecom_unavailable", "WeCom is busy or unreachable; try again shortly")
    errcode = getattr(exc, "errcode", None)
    errmsg = getattr(exc, "errmsg", None) or str(exc)
    return ApiError(502, "wecom_error", f"WeCom refused the change ({errcode}: {errmsg})")


def _invalid(fields: dict) -> ApiError:
    return ApiError(422, "validation_error", "the request has invalid fields", fields)


def _new_state() -> str:
    return STATE_PREFIX + "".join(secrets.choice(STATE_ALPHABET) for _ in range(10))


def _with_members(stmt: Select) -> Select:
    return stmt.options(selectinload(ContactCode.members).selectinload(ContactCodeMember.staff))


def visible(principal: Principal) -> Select:
    """Codes ``principal`` may read: the corp's for an admin, a rep's own for a rep."""
    stmt = select(ContactCode).where(ContactCode.corp_id == principal.corp_id)
    if not principal.is_admin:
        stmt = stmt.where(
            exists().where(
                ContactCodeMember.code_id == ContactCode.id, ContactCodeMember.staff_id == (principal.staff_id or -1)
            )
        )
    return stmt


def get(principal: Principal, code_id: int, for_update: bool = False) -> ContactCode:
    """One code with its members (row-locked with ``for_update``); 404 when not visible."""
    stmt = _with_members(visible(principal).where(ContactCode.id == code_id))
    if for_update:
        stmt = stmt.with_for_update(of=ContactCode).execution_options(populate_existing=True)
    code = db.session.scalar(stmt)
    if code is None:
        raise NotFound("contact code")
    return code


def search(
    principal: Principal,
    *,
    page: int,
    per_page: int,
    status: CodeStatus | None = None,
    mode: CodeMode | None = None,
    q: str | None = None,
) -> Page:
    """Codes ``principal`` may read, newest first, filtered by status, mode or text."""
    stmt = _with_members(visible(principal))
    if status:
        stmt = stmt.where(ContactCode.status == status)
    if mode:
        stmt = stmt.where(ContactCode.mode == mode)
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(ContactCode.name).like(like),
                func.lower(ContactCode.channel).like(like),
                ContactCode.state == q,
            )
        )
    return paginate(stmt, page, per_page, ContactCode.id.desc())


# -- validation that needs the database ------------------------------------------------------
def _resolve_staff(corp_id: int, members: list[dict]) -> dict[str, Staff]:
    userids = [m["userid"] for m in members]
    rows = {
        s.userid: s
        for s in db.session.scalars(select(Staff).where(Staff.corp_id == corp_id, Staff.userid.in_(userids)))
    }
    errors: dict = {}
    for i, userid in enumerate(userids):
        row = rows.get(userid)
        if row is None:
            errors[i] = {"userid": [f"no rep {userid!r} in this corp (sync staff first?)"]}
        elif row.status == StaffStatus.resigned:
            errors[i] = {"userid": [f"{userid!r} has resigned"]}
    if errors:
        raise _invalid({"members": errors})
    return rows


def _check_state_free(corp_id: int, state: str) -> None:
    if db.session.scalar(select(ContactCode.id).where(ContactCode.corp_id == corp_id, ContactCode.state == state)):
        raise _invalid({"state": ["already used by another contact code"]})


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise _invalid({"expires_at": ["must be in the future"]})


def _members(corp_id: int, specs: list[dict], existing: dict[int, ContactCodeMember] | None = None):
    """Member rows for ``specs`` in pool order, reusing ``existing`` rows (by staff id)."""
    staff = _resolve_staff(corp_id, specs)
    existing = existing or {}
    rows = []
    for position, spec in enumerate(specs):
        rep = staff[spec["userid"]]
        row = existing.get(rep.id) or ContactCodeMember(corp_id=corp_id, staff_id=rep.id, staff=rep)
        row.position = position
        row.weight = spec.get("weight", 1)
        row.daily_cap = spec.get("daily_cap")
        row.total_cap = spec.get("total_cap")
        row.backup = spec.get("backup", False)
        row.paused = spec.get("paused", False)
        rows.append(row)
    return rows


# -- WeCom contact ways ---------------------------------------------------------------------
def _add_way(code: ContactCode, users: list[str], single: bool) -> dict:
    return contact_client().external_contact.add_contact_way(
        type=WAY_SINGLE if single else WAY_MULTI,
        scene=SCENE_QR,
        remark=code.name[:30],
        skip_verify=code.skip_verify,
        state=code.state,
        user=users,
    )


def _delete_ways(config_ids: list[str], strict: bool = False) -> None:
    """Delete contact ways; a way WeCom no longer has counts as deleted. ``strict`` raises any
    other failure (archive must not claim success); otherwise failures are logged (cleanup)."""
    for config_id in config_ids:
        try:
            contact_client().external_contact.del_contact_way(config_id)
        except (WeChatClientException, requests.RequestException) as exc:
            if getattr(exc, "errcode", None) in WAY_GONE_ERRCODES:
                continue
            if strict:
                raise
            log.exception("could not delete contact way %s; delete it in the WeCom console", config_id)


def _create_member_ways(code: ContactCode, created: list[str]) -> None:
    """routed mode: each member's own single-person way for this code, made once."""
    for member in code.members:
        if member.config_id is None:
            way = _add_way(code, [member.staff.userid], single=True)
            created.append(way["config_id"])
            member.config_id, member.qr_code = way["config_id"], way.get("qr_code")


# -- commands -------------------------------------------------------------------------------
def create(principal: Principal, data: dict, now: datetime | None = None) -> ContactCode:
    """Create a code and its WeCom contact way(s); returns it with state, config_id and qr_code."""
    now = now or utcnow()
    corp_id = principal.corp_id
    _check_expiry(data.get("expires_at"), now)
    state = data.get("state") or _new_state()
    _check_state_free(corp_id, state)
    code = ContactCode(
        corp_id=corp_id,
        name=data["name"],
        channel=data["channel"],
        mode=data.get("mode", CodeMode.wecom),
        strategy=data["strategy"],
        state=state,
        skip_verify=data.get("skip_verify", True),
        expires_at=data.get("expires_at"),
        schedule=data.get("schedule"),
        welcome=data.get("welcome"),
        tags=data.get("tags") or [],
        tag_ids=[],
        wecom_users=[],
        created_by=principal.actor,
    )
    code.members = _members(corp_id, data["members"])
    if not any(m.backup is False and m.paused is False for m in code.members):
        raise _invalid({"members": ["at least one pool member (not a backup, not paused) is needed"]})
    created: list[str] = []
    try:
        db.session.add(code)
        db.session.flush()
        code.tag_ids = tags.ensure(corp_id, code.tags)
        if code.mode == CodeMode.wecom:
            users = wecom_sync.initial_users(code, now)
            way = _add_way(code, users, single=False)
            created.append(way["config_id"])
            code.config_id, code.qr_code, code.wecom_users = way["config_id"], way.get("qr_code"), users
        else:
            _create_member_ways(code, created)
        audit.record(
            corp_id,
            principal.actor,
            "contact_code.create",
            "contact_code",
            code.id,
            data={"name": code.name, "state": code.state, "mode": str(code.mode)},
        )
        cache.bump_after_commit(code)  # processes that cached a miss for this state reload
        db.session.commit()
    except (WeChatClientException, requests.RequestException) as exc:
        db.session.rollback()
        _delete_ways(created)
        raise wecom_error(exc) from exc
    except IntegrityError as exc:  # another request took the state between our check and insert
        db.session.rollback()
        _delete_ways(created)
        raise _invalid({"state": ["already used by another contact code"]}) from exc
    except BaseException:
        db.session.rollback()
        _delete_ways(created)
        raise
    return code


SCALARS = ("name", "channel", "strategy", "skip_verify", "expires_at", "schedule", "welcome")


def update(principal: Principal, code_id: int, data: dict, now: datetime | None = None) -> ContactCode:
    """Change a code; its WeCom side follows (user list, per-rep ways, remark, skip_verify)."""
    now = now or utcnow()
    code = get(principal, code_id, for_update=True)
    if code.status == CodeStatus.archived:
        raise Conflict("an archived contact code cannot change")
    if "expires_at" in data:
        _check_expiry(data["expires_at"], now)
    wecom_fields_changed = any(k in data and data[k] != getattr(code, k) for k in ("name", "skip_verify"))
    for key in SCALARS:
        if key in data:
            setattr(code, key, data[key])
    created: list[str] = []
    doomed: list[str] = []
    try:
        if "tags" in data:
            code.tags = data["tags"]
            code.tag_ids = tags.ensure(code.corp_id, code.tags)
        if "members" in data:
            old = {m.staff_id: m for m in code.members}
            code.members = _members(code.corp_id, data["members"], old)
            kept = {m.staff_id for m in code.members}
            doomed = [m.config_id for sid, m in old.items() if sid not in kept and m.config_id]
            if not any(m.backup is False and m.paused is False for m in code.members):
                raise _invalid({"members": ["at least one pool member (not a backup, not paused) is needed"]})
        db.session.flush()
        if code.mode == CodeMode.routed:
            _create_member_ways(code, created)
            if wecom_fields_changed:
                for member in code.members:
                    if member.config_id not in created:
                        contact_client().external_contact.update_contact_way(
                            member.config_id, code.name[:30], skip_verify=code.skip_verify
                        )
        else:
            wecom_sync.apply(code, now, reason="code changed", force=wecom_fields_changed)
        audit.record(
            code.corp_id, principal.actor, "contact_code.update", "contact_code", code.id, data={"fields": sorted(data)}
        )
        cache.bump_after_commit(code)
        db.session.commit()
    except (WeChatClientException, requests.RequestException) as exc:
        db.session.rollback()
        _delete_ways(created)
        raise wecom_error(exc) from exc
    except BaseException:
        db.session.rollback()
        _delete_ways(created)
        raise
    _delete_ways(doomed)  # reps taken out of a routed code: their ways for it go
    return code


def pause(principal: Principal, code_id: int, now: datetime | None = None) -> ContactCode:
    """Stop the pool taking customers; backups (if any) take them. A wecom-mode way without
    backups keeps its list (WeCom cannot empty it): archive to stop a printed code for good."""
    return _set_status(principal, code_id, CodeStatus.paused, now or utcnow())


def resume(principal: Principal, code_id: int, now: datetime | None = None) -> ContactCode:
    """The pool takes customers again (WeCom's list follows at once in wecom mode)."""
    return _set_status(principal, code_id, CodeStatus.active, now or utcnow())


def _set_status(principal: Principal, code_id: int, status: CodeStatus, now: datetime) -> ContactCode:
    code = get(principal, code_id, for_update=True)
    if code.status == CodeStatus.archived:
        raise Conflict("an archived contact code cannot be paused or resumed")
    if code.status == status:
        return code
    code.status = status
    code.paused_at = now if status == CodeStatus.paused else None
    try:
        wecom_sync.apply(code, now, reason=f"code {status}")
        action = "contact_code.pause" if status == CodeStatus.paused else "contact_code.resume"
        audit.record(code.corp_id, principal.actor, action, "contact_code", code.id)
        cache.bump_after_commit(code)
        db.session.commit()
    except (WeChatClientException, requests.RequestException) as exc:
        db.session.rollback()
        raise wecom_error(exc) from exc
    return code


def archive(
    principal: Principal | None,
    code_id: int,
    now: datetime | None = None,
    reason: str | None = None,
    corp_id: int | None = None,
) -> ContactCode:
    """Delete the code's WeCom way(s) and retire it for good (history and stats stay). With no
    ``principal`` the system archives (an expired code) in ``corp_id``."""
    if principal is not None:
        code = get(principal, code_id, for_update=True)
    else:
        code = db.session.scalar(
            _with_members(select(ContactCode).where(ContactCode.id == code_id, ContactCode.corp_id == corp_id))
            .with_for_update(of=ContactCode)
            .execution_options(populate_existing=True)
        )
        if code is None:
            raise NotFound("contact code")
    if code.status == CodeStatus.archived:
        return code
    try:
        _delete_ways([c for c in [code.config_id, *(m.config_id for m in code.members)] if c], strict=True)
    except (WeChatClientException, requests.RequestException) as exc:
        db.session.rollback()
        raise wecom_error(exc) from exc
    code.status, code.archived_at = CodeStatus.archived, now or utcnow()
    audit.record(
        code.corp_id,
        principal.actor if principal else "system",
        "contact_code.archive",
        "contact_code",
        code.id,
        reason=reason,
    )
    cache.bump_after_commit(code)
    db.session.commit()
    return code


def archive_expired(now: datetime | None = None) -> int:
    """Archive every live code whose expiry has passed (the periodic tick). Returns how many."""
    now = now or utcnow()
    rows = db.session.execute(
        select(ContactCode.id, ContactCode.corp_id).where(
            ContactCode.status != CodeStatus.archived,
            ContactCode.expires_at.is_not(None),
            ContactCode.expires_at <= now,
        )
    ).all()
    db.session.commit()
    done = 0
    for code_id, corp_id in rows:
        try:
            archive(None, code_id, now, reason="expired", corp_id=corp_id)
            done += 1
        except ApiError:
            log.exception("contact code %s expired but could not be archived; the next tick retries", code_id)
    return done


# -- records --------------------------------------------------------------------------------
def assignments(principal: Principal, code_id: int, *, page: int, per_page: int) -> Page:
    """The code's decisions, newest first, each with why."""
    assignment.flush_decisions()  # the routed decisions still in the log are listed too
    code = get(principal, code_id)
    stmt = select(ContactCodeAssignment).where(ContactCodeAssignment.code_id == code.id)
    return paginate(stmt, page, per_page, ContactCodeAssignment.id.desc())


@dataclass
class AddRecord:
    add: ContactCodeAdd
    userid: str
    welcome: ContactCodeWelcome | None
    customer_name: str = ""

    def __getattr__(self, name):  # the schema reads the add's own fields through the record
        return getattr(self.add, name)

    @property
    def welcome_status(self):
        return self.welcome.status if self.welcome else None

    @property
    def welcome_errcode(self):
        return self.welcome.errcode if self.welcome else None


def adds(principal: Principal, code_id: int, *, page: int, per_page: int) -> Page:
    """Customers the code brought, newest first, with the fate of their welcome."""
    code = get(principal, code_id)
    result = paginate(
        select(ContactCodeAdd).where(ContactCodeAdd.code_id == code.id), page, per_page, ContactCodeAdd.id.desc()
    )
    welcomes: dict[int, ContactCodeWelcome] = {}
    userids: dict[int, str] = {}
    names: dict[int, str] = {}
    if result.items:
        found = select(ContactCodeWelcome).where(ContactCodeWelcome.add_id.in_([a.id for a in result.items]))
        welcomes = {w.add_id: w for w in db.session.scalars(found)}
        userids = dict(db.session.execute(
            select(Staff.id, Staff.userid).where(Staff.id.in_({a.staff_id for a in result.items}))
        ).all())
        names = dict(db.session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_({a.customer_id for a in result.items}))
        ).all())
    result.items = [
        AddRecord(a, userids.get(a.staff_id, ""), welcomes.get(a.id), names.get(a.customer_id) or "")
        for a in result.items
    ]
    return result


def touches(corp_id: int, customer_ids: list[int]) -> dict[str, dict | None]:
    """The codes that brought a customer (any of its merged ids): ``first`` and ``last`` touch,
    each {id, name, state, channel, status, staff_id, added_at}, or None when no code did."""
    stmt = (
        select(
            ContactCode.id,
            ContactCode.name,
            ContactCode.state,
            ContactCode.channel,
            ContactCode.status,
            ContactCodeAdd.staff_id,
            ContactCodeAdd.added_at,
        )
        .join(ContactCode, ContactCode.id == ContactCodeAdd.code_id)
        .where(ContactCodeAdd.corp_id == corp_id, ContactCodeAdd.customer_id.in_(customer_ids))
        .limit(1)
    )
    first = db.session.execute(stmt.order_by(ContactCodeAdd.added_at, ContactCodeAdd.id)).first()
    last = db.session.execute(stmt.order_by(ContactCodeAdd.added_at.desc(), ContactCodeAdd.id.desc())).first()
    return {"first": first._asdict() if first else None, "last": last._asdict() if last else None}
