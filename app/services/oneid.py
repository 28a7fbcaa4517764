"""OneID: identities (type, value) resolve to one customer.

Every path that learns an identity goes through here: WeCom callbacks and sync (external_userid
+ unionid), the mini-program login (mp_openid + unionid), verified phones (:func:`link_phone`),
``idconvert`` (:func:`link_idconvert`) and bulk imports (:func:`bulk_link`).

The rules:

- an identity is (type, value), unique per corp; phones count only as E.164 (region CN);
- **strong links merge**: identities given together to :func:`resolve_or_create` are asserted
  by a trusted source to be one person, so customers holding them become one (the oldest
  survives; :mod:`app.services.merge` moves every fact and records how to undo it);
- **conflicts never merge**: a link that would give one customer two different unionids, or
  join customers that each hold a different verified phone, is flagged for review instead;
- **weak signals only suggest**: an unverified phone already held by someone else, or the same
  name and company, create a merge suggestion an admin accepts or rejects.

Concurrency. Every OneID write takes transaction-scoped PostgreSQL advisory locks, keyed on
identity values (exclusive, so two workers never create or attach the same identity twice) and
on customer ids (shared while a customer is resolved or extended, exclusive to merge or unmerge
it, so a merge never races a writer of that customer's facts). A call plans from an unlocked
read, takes all its locks in one batch in key order (so concurrent calls cannot wait on each
other in a cycle), re-reads, and if the world moved meanwhile takes the extra locks it now needs
with *try*-locks (never waiting, so never deadlocking); if they stay busy it raises
:class:`OneIdBusy`, an ``OperationalError`` every retry path (the event pipeline, :func:`link`)
treats as transient. SQLite has no advisory locks: there the first write lock of the
transaction serialises writers, which is all a one-file dev database needs.

A transaction that makes several OneID calls acquires locks in several batches; two such
transactions can still deadlock on each other, which PostgreSQL detects and breaks by failing
one of them (also an ``OperationalError``, retried). Keep to one OneID call per transaction
where you can.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import phonenumbers
from flask import current_app
from sqlalchemy import insert, select, text, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError

from app.errors import ApiError, NotFound
from app.extensions import db
from app.models import Customer, Identity, IdentityType, utcnow
from app.services import merge as merge_service
from app.services.auth import Principal
from app.services.customers import resolve_id, visible

log = logging.getLogger(__name__)

PHONE_REGION = "CN"
# A strong identity names one person for sure; a phone is only as good as its verification.
STRONG_TYPES = frozenset(IdentityType) - {IdentityType.phone}
# How long a call keeps trying locks it needs beyond its first batch before giving up.
TOP_UP_SECONDS = 0.5
MAX_REPLANS = 5
# A bulk import this large refreshes the planner's statistics of the tables it filled.
ANALYZE_AFTER_ROWS = 10_000
Ident = tuple[IdentityType, str]


class OneIdBusy(OperationalError):
    """Identities or customers this call needs are locked by another transaction: roll back
    and run the whole transaction again (the event pipeline and :func:`link` do)."""

    def __init__(self, keys: list[int]):
        super().__init__("pg_try_advisory_xact_lock", {"keys": keys}, Exception("OneID locks are busy"))


class InvalidPhone(ApiError):
    """A phone number that does not parse as a valid number (default region CN)."""

    def __init__(self, raw: str):
        super().__init__(422, "validation_error", "invalid phone number", {"phone": [f"{raw!r} is not a valid number"]})


def normalise_phone(raw: str) -> str:
    """``raw`` as E.164 (``+8613800138000``); mainland numbers may omit the country code."""
    try:
        number = phonenumbers.parse(str(raw), PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(raw) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise(type_: IdentityType | str, value: str) -> Ident:
    """The canonical form of one identity; raises :class:`InvalidPhone` for a bad phone."""
    type_ = IdentityType(type_)
    value = str(value).strip()
    if type_ == IdentityType.phone:
        value = normalise_phone(value)
    return type_, value


# -- locks -----------------------------------------------------------------------------------


def _key(*parts) -> int:
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def identity_key(corp_id: int, ident: Ident) -> int:
    """The advisory lock key of an identity value."""
    return _key("oneid-i", corp_id, ident[0], ident[1])


def customer_key(corp_id: int, customer_id: int) -> int:
    """The advisory lock key of a customer (shared: resolving/extending; exclusive: merging)."""
    return _key("oneid-c", corp_id, customer_id)


class Locks:
    """The locks one OneID operation holds (key → exclusive?). Only a call that holds none yet
    may wait, and it takes its whole batch in key order; once it holds some it only tries
    (see the module docstring for why)."""

    def __init__(self) -> None:
        self.held: dict[int, bool] = {}
        self._sqlite_locked = False

    def missing(self, wanted: dict[int, bool]) -> dict[int, bool]:
        return {k: x for k, x in wanted.items() if k not in self.held or (x and not self.held[k])}

    def take(self, wanted: dict[int, bool]) -> None:
        missing = self.missing(wanted)
        if db.session.get_bind().dialect.name != "postgresql":
            if not self._sqlite_locked:
                # SQLite: take the database write lock now, so what we read next stays true
                # until we commit (a no-op UPDATE is enough to hold it).
                db.session.execute(text("UPDATE customer SET id = id WHERE 1 = 0"))
                self._sqlite_locked = True
            self.held.update(missing)
            return
        if not missing:
            return
        if self.held:
            self._try(missing)
            return
        keys = sorted(missing)
        db.session.execute(
            text(
                "SELECT CASE WHEN t.x THEN pg_advisory_xact_lock(t.k) ELSE pg_advisory_xact_lock_shared(t.k) END"
                " FROM unnest(CAST(:keys AS bigint[]), CAST(:modes AS boolean[])) AS t(k, x)"
            ),
            {"keys": keys, "modes": [missing[k] for k in keys]},
        ).all()
        self.held.update(missing)

    def _try(self, missing: dict[int, bool]) -> None:
        deadline = time.monotonic() + TOP_UP_SECONDS
        pause = 0.005
        while True:
            keys = sorted(missing)
            got = db.session.execute(
                text(
                    "SELECT t.k, CASE WHEN t.x THEN pg_try_advisory_xact_lock(t.k)"
                    " ELSE pg_try_advisory_xact_lock_shared(t.k) END"
                    " FROM unnest(CAST(:keys AS bigint[]), CAST(:modes AS boolean[])) AS t(k, x)"
                ),
                {"keys": keys, "modes": [missing[k] for k in keys]},
            ).all()
            for key, ok in got:
                if ok:
                    self.held[key] = missing.pop(key)
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise OneIdBusy(sorted(missing))
            time.sleep(pause * (1 + random.random()))  # noqa: S311 - jitter, not security
            pause = min(pause * 2, 0.1)


def lock_customers(corp_id: int, customer_ids: Iterable[int], locks: Locks, exclusive: bool) -> None:
    """Lock customers (for a merge or unmerge: exclusive) through ``locks``."""
    locks.take({customer_key(corp_id, cid): exclusive for cid in customer_ids})


def customer_for_write(corp_id: int, customer_id: int) -> int:
    """The current id of a customer (following merges), locked so it cannot be merged away
    until this transaction ends. Call it before writing facts (visits, scores, notes) for a
    customer id you got in an earlier transaction; raises NotFound for an unknown id."""
    locks = Locks()
    for _ in range(MAX_REPLANS):
        root = resolve_id(corp_id, customer_id)
        if root is None:
            raise NotFound("customer")
        locks.take({customer_key(corp_id, root): False})
        if resolve_id(corp_id, customer_id) == root:
            return root
    raise OneIdBusy([customer_key(corp_id, customer_id)])


# Lock not available, deadlock broken, serialization failure (PostgreSQL); SQLite's busy lock.
_BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001"})


@contextmanager
def busy_answers_409():
    """For a request's OneID writes: wait for locks at most ``ONEID_API_LOCK_TIMEOUT_MS``, and
    answer a change that lost the race with 409 (the client's to retry), not a hang or a 500.
    The transaction is rolled back, so nothing is half-written."""
    if db.session.get_bind().dialect.name == "postgresql":
        timeout = int(current_app.config["ONEID_API_LOCK_TIMEOUT_MS"])
        db.session.execute(text(f"SET LOCAL lock_timeout = {timeout}"))
    try:
        yield
    except OperationalError as exc:
        busy = isinstance(exc, OneIdBusy) or getattr(exc.orig, "sqlstate", None) in _BUSY_SQLSTATES
        if not busy and "database is locked" not in str(exc.orig):
            raise
        db.session.rollback()
        raise ApiError(409, "busy", "these customers are being changed by another request; try again") from exc


# -- resolving -------------------------------------------------------------------------------


@dataclass
class _Known:
    customer_id: int
    verified: bool
    customer: Customer  # held so the session's (weak) identity map keeps the loaded row


@dataclass
class _Plan:
    """What a link does, computed from one read of the identities it names."""

    customer_id: int | None = None  # None: create a customer
    absorb: list[int] = field(default_factory=list)
    attach: list[Ident] = field(default_factory=list)
    attach_weak: list[Ident] = field(default_factory=list)
    suggest: dict[int, list[str]] = field(default_factory=dict)  # other customer → phones shared
    conflict: tuple[str, list[int], str] | None = None
    locks: dict[int, bool] = field(default_factory=dict)
    known: dict[Ident, _Known] = field(default_factory=dict)


def _read(corp_id: int, idents: list[Ident]) -> dict[Ident, _Known]:
    # The customer rows come along so the caller's session.get() needs no query of its own.
    rows = db.session.execute(
        select(Identity.type, Identity.value, Identity.verified, Customer)
        .join(Customer, Customer.id == Identity.customer_id)
        .where(Identity.corp_id == corp_id, tuple_(Identity.type, Identity.value).in_(idents))
    ).all()
    known = {}
    for type_, value, verified, customer in rows:
        owner = customer.id
        if customer.merged_into_id is not None:
            # Identities live on surviving customers (a merge moves them); follow a pointer
            # anyway rather than resolve to a customer that no longer answers.
            owner = resolve_id(corp_id, customer.id) or customer.id
        known[(IdentityType(type_), value)] = _Known(owner, verified, customer)
    return known


def _oldest(customer_ids: Iterable[int]) -> list[int]:
    """``customer_ids`` oldest first (creation time, then id)."""
    rows = db.session.execute(
        select(Customer.id).where(Customer.id.in_(list(customer_ids))).order_by(Customer.created_at, Customer.id)
    ).scalars()
    return list(rows)


def conflict_between(corp_id: int, customer_ids: list[int], link: list[Ident]) -> tuple[str, str] | None:
    """Why ``customer_ids`` joined by ``link`` must not be merged automatically, or None:
    they would hold two different unionids, or two of them hold different verified phones."""
    rows = db.session.execute(
        select(Identity.type, Identity.value, Identity.customer_id, Identity.verified).where(
            Identity.corp_id == corp_id,
            Identity.customer_id.in_(customer_ids),
            Identity.type.in_([IdentityType.unionid, IdentityType.phone]),
        )
    ).all()
    unionids = {v for t, v, _, _ in rows if t == IdentityType.unionid} | {
        v for t, v in link if t == IdentityType.unionid
    }
    if len(unionids) > 1:
        return "unionid", f"the customers would hold {len(unionids)} unionids: {', '.join(sorted(unionids))}"
    linked_phones = {v for t, v in link if t == IdentityType.phone}
    holders: dict[int, set[str]] = {}
    for t, v, cid, verified in rows:
        if t == IdentityType.phone and verified and v not in linked_phones:
            holders.setdefault(cid, set()).add(v)
    if len(holders) > 1:
        detail = "; ".join(f"#{cid}: {', '.join(sorted(p))}" for cid, p in sorted(holders.items()))
        return "verified_phone", f"the customers hold different verified phones ({detail})"
    return None


def _plan(corp_id: int, link: list[Ident], known: dict[Ident, _Known]) -> _Plan:
    plan = _Plan(known=known)
    strong = [i for i in link if i[0] in STRONG_TYPES]
    phones = [i for i in link if i[0] == IdentityType.phone]
    owners = list(dict.fromkeys(known[i].customer_id for i in strong if i in known))
    if strong:
        if owners:
            # Only joining customers, or giving one a unionid, can conflict.
            new_unionid = any(i not in known and i[0] == IdentityType.unionid for i in strong)
            conflict = conflict_between(corp_id, owners, strong) if len(owners) > 1 or new_unionid else None
            if len(owners) > 1 and conflict is None:
                oldest = _oldest(owners)
                plan.customer_id, plan.absorb = oldest[0], oldest[1:]
            else:
                # The owner of the caller's first identity keeps answering for it.
                plan.customer_id = owners[0]
            if conflict:
                plan.conflict = (conflict[0], sorted(owners), conflict[1])
        unionid_refused = plan.conflict is not None and plan.conflict[0] == "unionid"
        plan.attach = [i for i in strong if i not in known and not (unionid_refused and i[0] == IdentityType.unionid)]
    else:
        phone_owners = [known[i].customer_id for i in phones if i in known]
        plan.customer_id = phone_owners[0] if phone_owners else None
    for phone in phones:
        if phone not in known:
            plan.attach_weak.append(phone)
        elif known[phone].customer_id != plan.customer_id and known[phone].customer_id not in plan.absorb:
            plan.suggest.setdefault(known[phone].customer_id, []).append(phone[1])
    for ident in plan.attach + plan.attach_weak:
        plan.locks[identity_key(corp_id, ident)] = True
    if plan.customer_id is not None:
        merging = bool(plan.absorb)
        for cid in [plan.customer_id, *plan.absorb]:
            plan.locks[customer_key(corp_id, cid)] = merging
    return plan


def _settle(corp_id: int, link: list[Ident], planner) -> _Plan:
    """Plan, lock what the plan needs, re-read and re-plan until the plan's locks are held."""
    locks = Locks()
    plan = planner(_read(corp_id, link))
    for _ in range(MAX_REPLANS):
        locks.take(plan.locks)
        plan = planner(_read(corp_id, link))
        if not locks.missing(plan.locks):
            return plan
    raise OneIdBusy(sorted(locks.missing(plan.locks)))


def resolve_or_create(corp_id: int, identities: list[tuple[IdentityType, str]], source: str, **profile) -> Customer:
    """The customer the given identities belong to, created when none is known.

    ``identities`` are asserted by one trusted source (WeCom's ``externalcontact/get``, the
    mini-program's code2session, ``idconvert``) to be the same person: customers holding them
    are merged into the oldest, unless that would join conflicting identities (two unionids,
    different verified phones), which is flagged for review and leaves them apart; identities
    not yet known are attached. Phones given here are *unverified* (weak): free ones are
    attached unverified, ones held by another customer only create a merge suggestion, and an
    invalid phone is ignored (logged); use :func:`link_phone` for a verified phone.
    ``profile`` fills a new customer's fields (name, avatar, gender, corp_name, channels).

    Runs inside the caller's transaction and does not commit.
    """
    link = _normalise_link(identities)
    if not link:
        raise ValueError("at least one identity is needed to resolve a customer")
    plan = _settle(corp_id, link, lambda known: _plan(corp_id, link, known))
    created = plan.customer_id is None
    if created:
        customer = Customer(corp_id=corp_id, **profile)
        db.session.add(customer)
        db.session.flush()
    else:
        customer = db.session.get(Customer, plan.customer_id)
    if plan.absorb:
        reason = f"strong link from {source}: " + ", ".join(f"{t}={v}" for t, v in link if t in STRONG_TYPES)
        for absorbed in plan.absorb:
            merge_service.merge_locked(
                corp_id, customer.id, absorbed, actor="system", reason=reason, kind="auto", source=source
            )
    _attach(corp_id, customer.id, plan.attach, source, verified=True)
    _attach(corp_id, customer.id, plan.attach_weak, source, verified=False)
    if plan.conflict:
        kind, customer_ids, detail = plan.conflict
        merge_service.flag_conflict(corp_id, kind, customer_ids, link, source, detail)
    for other, phones in plan.suggest.items():
        merge_service.suggest(corp_id, customer.id, other, "same_phone", {"phones": phones, "source": source})
    if created:
        _suggest_same_name(corp_id, customer)
    db.session.flush()
    return customer


def resolve_many(
    corp_id: int, links: list[list[tuple[IdentityType, str]]], source: str, profiles: list[dict]
) -> list[Customer | None]:
    """:func:`resolve_or_create` for a batch of links in one call: one read, one batch of locks,
    the new customers and identities inserted together. Only links that resolve to one known
    customer (attaching strong identities at most) or make a new one are settled here; a link
    that would merge, conflict, suggest or carry a phone, or shares an identity with an earlier
    link of the batch, is answered None: give it to :func:`resolve_or_create` in a transaction
    of its own. ``profiles[i]`` fills the customer link ``i`` creates. Runs inside the caller's
    transaction, which should make no other OneID call (see the module docstring), and does
    not commit.
    """
    norm = [_normalise_link(identities) for identities in links]
    idents = list(dict.fromkeys(ident for link in norm for ident in link))
    if not idents:
        return [None] * len(links)

    def plans(known: dict[Ident, _Known]) -> list[_Plan | None]:
        return [_plan(corp_id, link, known) if link else None for link in norm]

    first = plans(_read(corp_id, idents))
    chosen, claimed = [], set()
    for i, plan in enumerate(first):
        if _settles_alone(plan) and not claimed.intersection(norm[i]):
            chosen.append(i)
            claimed.update(norm[i])
    locks = Locks()
    locks.take({key: exclusive for i in chosen for key, exclusive in first[i].locks.items()})
    # Re-planned under the locks: a link the world changed for meanwhile goes one by one.
    again = plans(_read(corp_id, idents))
    settled = {i: again[i] for i in chosen if _settles_alone(again[i]) and not locks.missing(again[i].locks)}
    customers: list[Customer | None] = [None] * len(links)
    new = [i for i, plan in settled.items() if plan.customer_id is None]
    for i, plan in settled.items():
        if plan.customer_id is not None:
            customers[i] = db.session.get(Customer, plan.customer_id)
    # ORM bulk inserts rather than the unit of work: a batch's new rows need no per-object
    # bookkeeping before the flush (a few per cent of a drained event's CPU).
    created = []
    if new:
        created = db.session.scalars(
            insert(Customer).returning(Customer, sort_by_parameter_order=True),
            [{"corp_id": corp_id, **profiles[i]} for i in new],
        ).all()
    for i, customer in zip(new, created, strict=True):
        customers[i] = customer
    now = utcnow()
    identities = [
        {"corp_id": corp_id, "customer_id": customers[i].id, "type": type_, "value": value, "source": source,
         "verified": True, "created_at": now}
        for i, plan in settled.items()
        for type_, value in plan.attach
    ]
    if identities:
        db.session.execute(insert(Identity), identities)
    for customer in created:
        _suggest_same_name(corp_id, customer)
    db.session.flush()
    return customers


def _settles_alone(plan: _Plan | None) -> bool:
    """A plan with no merge, conflict, suggestion or phone: its link touches one customer only."""
    return plan is not None and not (plan.absorb or plan.conflict or plan.suggest or plan.attach_weak)


def _normalise_link(identities) -> list[Ident]:
    return (_normalise_many([identities]) or [[]])[0]


_TYPES = {t.value: t for t in IdentityType}
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
MAX_VALUE_LENGTH = 128


def _normalise_many(links: Iterable) -> list[list[Ident]]:
    """Links in canonical form: typed, phones in E.164, values stripped, duplicates dropped.
    An invalid phone or an over-long value is left out (logged); a link left empty is dropped.
    One tight loop, because a bulk import runs it a million times."""
    out = []
    types, phone = _TYPES, IdentityType.phone
    for group in links:
        norm = []
        for type_, value in group:
            if not value:
                continue
            t = types.get(type_)
            if t is None:
                raise ValueError(f"unknown identity type {type_!r}")
            if t is phone:
                try:
                    value = normalise_phone(value)
                except InvalidPhone:
                    log.warning("ignoring an invalid phone number in a link")
                    continue
            else:
                value = (value if value.__class__ is str else str(value)).strip()
                if not value:
                    continue
                if len(value) > MAX_VALUE_LENGTH:
                    log.warning("ignoring a %s longer than %d characters", t, MAX_VALUE_LENGTH)
                    continue
            norm.append((t, value))
        if len(norm) == 2:
            if norm[0] == norm[1]:
                del norm[1]
        elif len(norm) > 2 and len(set(norm)) != len(norm):
            norm = list(dict.fromkeys(norm))
        if norm:
            out.append(norm)
    return out


def _attach(corp_id: int, customer_id: int, idents: list[Ident], source: str, verified: bool) -> None:
    for type_, value in idents:
        db.session.add(
            Identity(
                corp_id=corp_id,
                customer_id=customer_id,
                type=type_,
                value=value,
                source=source,
                verified=verified,
                created_at=utcnow(),
            )
        )
    if idents:
        db.session.flush()


def _suggest_same_name(corp_id: int, customer: Customer) -> None:
    """Same name and same company is a weak signal: suggest, never merge."""
    if not (customer.name and customer.corp_name):
        return
    others = db.session.scalars(
        select(Customer.id)
        .where(
            Customer.corp_id == corp_id,
            Customer.corp_name != "",  # the index's condition, so even a generic plan can use it
            Customer.corp_name == customer.corp_name,
            Customer.name == customer.name,
            Customer.merged_into_id.is_(None),
            Customer.id != customer.id,
        )
        .order_by(Customer.id)
        .limit(5)
    ).all()
    for other in others:
        merge_service.suggest(
            corp_id, customer.id, other, "same_name_company", {"name": customer.name, "corp_name": customer.corp_name}
        )


def link_phone(corp_id: int, customer_id: int, phone: str, verified: bool, source: str) -> Customer:
    """Give a customer a phone number; returns the customer that holds it afterwards.

    ``phone`` is normalised to E.164 (region CN); an invalid one raises :class:`InvalidPhone`
    (an ApiError, 422). ``verified`` = proven by the mini-program's phone-number API.

    - a verified phone is a strong link: a customer already holding it verified is merged with
      this one (unless that joins a conflict: flagged instead); one holding it *unverified*
      hands the phone over (verified wins) and a merge suggestion is made for the two;
    - an unverified phone is attached only when nobody holds it, else it creates a suggestion;
    - the same customer re-linking upgrades an unverified phone to verified.

    Runs inside the caller's transaction and does not commit.
    """
    ident = (IdentityType.phone, normalise_phone(phone))
    root = resolve_id(corp_id, customer_id)
    if root is None:
        raise NotFound("customer")

    def planner(known: dict[Ident, _Known]) -> _Plan:
        me = resolve_id(corp_id, root) or root
        plan = _Plan(customer_id=me, known=known)
        # Phone links are rare: always hold the phone itself, so two claims never interleave.
        plan.locks[identity_key(corp_id, ident)] = True
        holder = known.get(ident)
        others: list[int] = []
        if holder is None:
            (plan.attach if verified else plan.attach_weak).append(ident)
        elif holder.customer_id != me:
            others.append(holder.customer_id)
            if verified and holder.verified:
                conflict = conflict_between(corp_id, [me, holder.customer_id], [ident])
                if conflict:
                    plan.conflict = (conflict[0], sorted([me, holder.customer_id]), conflict[1])
                else:
                    oldest = _oldest([me, holder.customer_id])
                    plan.customer_id, plan.absorb = oldest[0], oldest[1:]
            else:
                plan.suggest[holder.customer_id] = [ident[1]]
                if verified:
                    plan.attach.append(ident)  # taken over from the unverified holder
        elif verified and not holder.verified:
            plan.attach.append(ident)
        merging = bool(plan.absorb)
        for cid in dict.fromkeys([me, *others]):
            plan.locks[customer_key(corp_id, cid)] = merging
        return plan

    plan = _settle(corp_id, [ident], planner)
    if plan.absorb:
        for absorbed in plan.absorb:
            merge_service.merge_locked(
                corp_id,
                plan.customer_id,
                absorbed,
                actor="system",
                reason=f"strong link from {source}: verified phone {ident[1]}",
                kind="auto",
                source=source,
            )
    row = db.session.scalar(
        select(Identity).where(Identity.corp_id == corp_id, Identity.type == ident[0], Identity.value == ident[1])
    )
    if row is None:
        _attach(corp_id, plan.customer_id, plan.attach + plan.attach_weak, source, verified=verified)
    elif plan.attach and (row.customer_id != plan.customer_id or not row.verified):
        # Verified wins: the phone moves to (or is confirmed on) the customer who proved it.
        row.customer_id, row.verified, row.source = plan.customer_id, True, source
    if plan.conflict:
        kind, customer_ids, detail = plan.conflict
        merge_service.flag_conflict(corp_id, kind, customer_ids, [ident], source, detail)
    for other, phones in plan.suggest.items():
        merge_service.suggest(corp_id, plan.customer_id, other, "same_phone", {"phones": phones, "source": source})
    db.session.flush()
    return db.session.get(Customer, plan.customer_id)


def link_idconvert(
    corp_id: int,
    unionid: str,
    openid: str,
    source: str = "idconvert",
    openid_type: IdentityType = IdentityType.mp_openid,
) -> Customer:
    """Ask WeCom which customer a WeChat user (unionid + the mini-program's openid) is
    (``idconvert/unionid_to_external_userid``) and link the answer: the external_userid when
    they are already a customer of the corp, else the pending_id WeCom will match later.
    Calls WeCom: run it in a worker, not in a request."""
    from wecom.client import contact_client

    answer = contact_client().idconvert.unionid_to_external_userid(unionid, openid)
    link = [(IdentityType.unionid, unionid), (openid_type, openid)]
    if answer.get("external_userid"):
        link.append((IdentityType.external_userid, answer["external_userid"]))
    if answer.get("pending_id"):
        link.append((IdentityType.pending_id, answer["pending_id"]))
    return resolve_or_create(corp_id, link, source)


IDCONVERT_ATTEMPTS = 5


def link_idconvert_job(corp_id: int, unionid: str, openid: str, attempt: int = 1) -> int | None:
    """RQ entry point for :func:`link_idconvert` (enqueue it after a mini-program login, on
    the ``low`` queue): commits; a transient WeCom error or a busy lock tries again later,
    with backoff, up to IDCONVERT_ATTEMPTS times. Returns the customer id (None: rescheduled)."""
    from jobs.queues import queues
    from wecom.errors import is_transient

    try:
        customer_id = link_idconvert(corp_id, unionid, openid).id
        db.session.commit()
        return customer_id
    except Exception as exc:
        db.session.rollback()
        retry = isinstance(exc, IntegrityError | OperationalError) or is_transient(exc)
        if not retry or attempt >= IDCONVERT_ATTEMPTS:
            raise
        log.warning("idconvert link failed (%s); retrying", type(exc).__name__)
        queues()["low"].enqueue_in(
            timedelta(seconds=15 * 2**attempt), link_idconvert_job, corp_id, unionid, openid, attempt + 1
        )
        return None


def customer_id_for(corp_id: int, type_: IdentityType, value: str) -> int | None:
    """The customer an identity resolves to (phones are normalised first), or None."""
    try:
        type_, value = normalise(type_, value)
    except InvalidPhone:
        return None
    row = db.session.execute(
        select(Identity.customer_id, Customer.merged_into_id)
        .join(Customer, Customer.id == Identity.customer_id)
        .where(Identity.corp_id == corp_id, Identity.type == type_, Identity.value == value)
    ).first()
    if row is None:
        return None
    return row.customer_id if row.merged_into_id is None else resolve_id(corp_id, row.customer_id)


def identity_row(corp_id: int, type_: IdentityType, value: str) -> Identity | None:
    """The stored identity (phones normalised first; an invalid phone raises InvalidPhone)."""
    type_, value = normalise(type_, value)
    return db.session.scalar(
        select(Identity).where(Identity.corp_id == corp_id, Identity.type == type_, Identity.value == value)
    )


@dataclass
class Resolved:
    customer_id: int
    type: IdentityType
    value: str
    source: str
    verified: bool
    created_at: datetime


def resolve_as(principal: Principal, type_: IdentityType, value: str) -> Resolved:
    """The customer an identity resolves to, for the API: 422 for an invalid phone, 404 when
    unknown or not visible to ``principal`` (a rep sees only their own customers)."""
    row = identity_row(principal.corp_id, type_, value)
    root = row and resolve_id(principal.corp_id, row.customer_id)
    if root is None or db.session.scalar(visible(principal).where(Customer.id == root)) is None:
        raise NotFound("identity")
    return Resolved(root, IdentityType(row.type), row.value, row.source, row.verified, row.created_at)


def link(corp_id: int, identities: list[tuple[IdentityType, str]], source: str, attempts: int = 5, **profile) -> int:
    """:func:`resolve_or_create` in a transaction of its own, committed, retried when a
    concurrent writer got in the way (lock busy, deadlock broken, duplicate insert). Returns the
    customer id. For callers that are not already inside a transaction of their own."""
    for attempt in range(attempts):
        try:
            customer_id = resolve_or_create(corp_id, identities, source, **profile).id
            db.session.commit()
            return customer_id
        except (IntegrityError, OperationalError) as exc:
            db.session.rollback()
            if attempt == attempts - 1:
                raise
            cause = exc if isinstance(exc, OneIdBusy) else (exc.orig or exc)
            log.info("oneid link retried after %s", type(cause).__name__)
            time.sleep(0.01 * 2**attempt * (1 + random.random()))  # noqa: S311 - jitter
    raise AssertionError("unreachable")  # the loop returns or raises


# -- bulk ------------------------------------------------------------------------------------


@dataclass
class BulkReport:
    links: int = 0
    identities_created: int = 0
    customers_created: int = 0
    already_known: int = 0
    # Links that touched existing customers or phones, or lost a race: resolved one by one.
    resolved_singly: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def bulk_link(corp_id: int, links: Iterable[Sequence[tuple[IdentityType, str]]], source: str) -> BulkReport:
    """Resolve many links at once (an import): the same outcome as calling
    :func:`resolve_or_create` for each, set-based on PostgreSQL.

    Links are grouped into people in memory (union-find); every identity is looked up with one
    COPY and a join; people entirely new (no phone, at most one unionid) are created with
    set-based INSERTs; links that touch existing customers (attach, merge, conflict), carry a
    phone or lost a race with a concurrent writer go through :func:`resolve_or_create` one by
    one, so every rule is the one the callbacks follow. Commits as it goes. On SQLite
    everything goes one by one.
    """
    report = BulkReport()
    started = time.perf_counter()
    groups = _normalise_many(links)
    report.links = len(groups)
    report.seconds["normalise"] = round(time.perf_counter() - started, 3)
    if db.session.get_bind().dialect.name != "postgresql":
        for group in groups:
            link(corp_id, group, source)
        report.resolved_singly = len(groups)
        report.seconds["total"] = round(time.perf_counter() - started, 3)
        return report
    singles = _bulk_create(corp_id, groups, source, report)
    mark = time.perf_counter()
    for n in singles:
        link(corp_id, groups[n], source)
    report.resolved_singly = len(singles)
    report.seconds["singly"] = round(time.perf_counter() - mark, 3)
    report.seconds["total"] = round(time.perf_counter() - started, 3)
    return report


def _copy_text(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _bulk_create(corp_id: int, groups: list[list[Ident]], source: str, report: BulkReport) -> list[int]:
    """The set-based part of :func:`bulk_link`; returns the indexes of the links left to
    resolve one by one."""
    mark = time.perf_counter()
    # People = connected components of the identities the links join (union-find).
    index: dict[Ident, int] = {}
    parent: list[int] = []
    lookup, grow = index.get, parent.append
    for group in groups:
        first = -1
        for ident in group:
            i = lookup(ident)
            if i is None:  # a new identity is a root of its own
                i = index[ident] = len(parent)
                grow(i)
            else:
                while parent[i] != i:  # find, halving the path
                    parent[i] = parent[parent[i]]
                    i = parent[i]
            if first < 0:
                first = i
            elif i != first:
                parent[i] = first
    idents = list(index)
    comp = [0] * len(parent)
    for i in range(len(parent)):
        root = i
        while parent[root] != root:
            root = parent[root]
        comp[i] = parent[i] = root
    # A person with a phone (weak) or two unionids (a conflict) follows the one-by-one rules.
    special: set[int] = set()
    seen_unionid: set[int] = set()
    for i, (type_, _) in enumerate(idents):
        if type_ is IdentityType.phone:
            special.add(comp[i])
        elif type_ is IdentityType.unionid:
            if comp[i] in seen_unionid:
                special.add(comp[i])
            seen_unionid.add(comp[i])
    report.seconds["group"] = round(time.perf_counter() - mark, 3)

    mark = time.perf_counter()
    raw = db.session.connection().connection.driver_connection  # psycopg: COPY needs the driver
    with raw.cursor() as cur:
        # Row estimates are exact after ANALYZE; compiling these one-off plans (JIT) costs more
        # than it saves, and the joins and sorts of a million rows should stay in memory.
        cur.execute("SET LOCAL jit = off")
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute(
            "CREATE TEMP TABLE oneid_bulk_in (comp integer, type varchar(32), value varchar(128)) ON COMMIT DROP"
        )
        with cur.copy("COPY oneid_bulk_in (comp, type, value) FROM STDIN") as copy:
            for start in range(0, len(idents), 50_000):
                copy.write(
                    "".join(
                        f"{comp[i]}\t{idents[i][0].name}\t{_copy_text(idents[i][1])}\n"
                        for i in range(start, min(start + 50_000, len(idents)))
                    )
                )
        cur.execute("ANALYZE oneid_bulk_in")
        cur.execute(
            "SELECT DISTINCT b.comp FROM oneid_bulk_in b JOIN identity i"
            " ON i.corp_id = %s AND i.type = b.type AND i.value = b.value",
            (corp_id,),
        )
        touched = {row[0] for row in cur}
        report.seconds["lookup"] = round(time.perf_counter() - mark, 3)

        mark = time.perf_counter()
        fresh = {c for c in comp if c not in touched and c not in special}
        expected = sum(1 for c in comp if c in fresh)
        now = utcnow()
        cur.execute("CREATE TEMP TABLE oneid_bulk_fresh (comp integer) ON COMMIT DROP")
        with cur.copy("COPY oneid_bulk_fresh (comp) FROM STDIN") as copy:
            ordered = sorted(fresh)
            for start in range(0, len(ordered), 100_000):
                copy.write("".join(f"{c}\n" for c in ordered[start : start + 100_000]))
        cur.execute(
            "CREATE TEMP TABLE oneid_bulk_ids ON COMMIT DROP AS SELECT comp,"
            " nextval(pg_get_serial_sequence('customer', 'id')) AS customer_id FROM oneid_bulk_fresh ORDER BY comp"
        )
        cur.execute("ANALYZE oneid_bulk_ids")
        cur.execute(
            "INSERT INTO customer (id, corp_id, name, avatar, gender, corp_name, created_at, updated_at)"
            " SELECT customer_id, %s, '', '', 0, '', %s, %s FROM oneid_bulk_ids ORDER BY customer_id",
            (corp_id, now, now),
        )
        # A concurrent writer may have taken an identity since the lookup: it keeps it, and the
        # person is re-resolved one by one below (which merges the two customers).
        cur.execute(
            "INSERT INTO identity (corp_id, customer_id, type, value, source, verified, created_at)"
            " SELECT %s, f.customer_id, b.type, b.value, %s, true, %s"
            " FROM oneid_bulk_in b JOIN oneid_bulk_ids f ON f.comp = b.comp ORDER BY b.type, b.value"
            " ON CONFLICT (corp_id, type, value) DO NOTHING",
            (corp_id, source, now),
        )
        inserted = cur.rowcount
        lost: set[int] = set()
        if inserted != expected:
            cur.execute(
                "SELECT DISTINCT f.comp FROM oneid_bulk_in b JOIN oneid_bulk_ids f ON f.comp = b.comp"
                " JOIN identity i ON i.corp_id = %s AND i.type = b.type AND i.value = b.value"
                " WHERE i.customer_id <> f.customer_id",
                (corp_id,),
            )
            lost = {row[0] for row in cur}
    report.customers_created = len(fresh)
    report.identities_created = inserted
    db.session.commit()
    if inserted >= ANALYZE_AFTER_ROWS:
        # The planner must know the tables grew, or the next lookups may scan by corp_id.
        db.session.execute(text("ANALYZE identity"))
        db.session.execute(text("ANALYZE customer"))
        db.session.commit()
    report.seconds["create"] = round(time.perf_counter() - mark, 3)

    later = touched | special | lost
    candidates = [n for n, group in enumerate(groups) if comp[index[group[0]]] in later]
    singles = _drop_settled(corp_id, groups, candidates)
    report.already_known = len(candidates) - len(singles)
    return singles


def _drop_settled(corp_id: int, groups: list[list[Ident]], candidates: list[int]) -> list[int]:
    """Of the given links, those whose identities one customer holds already need nothing."""
    todo = []
    for start in range(0, len(candidates), 5000):
        chunk = candidates[start : start + 5000]
        wanted = {ident for n in chunk for ident in groups[n]}
        owners = {
            (IdentityType(t), v): cid
            for t, v, cid in db.session.execute(
                select(Identity.type, Identity.value, Identity.customer_id).where(
                    Identity.corp_id == corp_id, tuple_(Identity.type, Identity.value).in_(list(wanted))
                )
            )
        }
        for n in chunk:
            held = {owners.get(ident) for ident in groups[n]}
            if len(held) != 1 or None in held or any(t == IdentityType.phone for t, _ in groups[n]):
                todo.append(n)
    return todo
