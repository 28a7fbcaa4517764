"""OneID: identities (type, value) resolve to one customer.

This is the seam every path that learns an identity goes through (callbacks, sync, the
mini-program). It finds the customer an identity set belongs to, or creates one, and attaches
the identities not yet known. Merging two customers that turn out to be one person (two
identities already held by different customers) is the OneID issue's work; until then the
older customer is used and the conflict is logged, never silently reassigned.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, tuple_

from app.extensions import db
from app.models import Customer, Identity, IdentityType, utcnow

log = logging.getLogger(__name__)


def resolve_or_create(corp_id: int, identities: list[tuple[IdentityType, str]], source: str, **profile) -> Customer:
    """The customer holding any of ``identities`` (the oldest if several), created when none
    does; missing identities are attached to it. ``profile`` fills a new customer's fields.

    Two workers creating the same new customer at once collide on the identity unique
    constraint; the loser's transaction fails and its job retries, then finds the winner's row.
    """
    identities = [(IdentityType(t), v) for t, v in identities if v]
    if not identities:
        raise ValueError("at least one identity is needed to resolve a customer")
    known = db.session.scalars(
        select(Identity).where(Identity.corp_id == corp_id, tuple_(Identity.type, Identity.value).in_(identities))
    ).all()
    owners = sorted({i.customer_id for i in known})
    if owners:
        customer = db.session.get(Customer, owners[0])
        if len(owners) > 1:
            log.warning("identities of one contact are held by several customers %s (merge pending)", owners)
    else:
        customer = Customer(corp_id=corp_id, **profile)
        db.session.add(customer)
        db.session.flush()
    have = {(i.type, i.value) for i in known}
    for type_, value in identities:
        if (type_, value) not in have:
            db.session.add(
                Identity(
                    corp_id=corp_id,
                    customer_id=customer.id,
                    type=type_,
                    value=value,
                    source=source,
                    created_at=utcnow(),
                )
            )
    db.session.flush()
    return customer


def customer_id_for(corp_id: int, type_: IdentityType, value: str) -> int | None:
    return db.session.scalar(
        select(Identity.customer_id).where(Identity.corp_id == corp_id, Identity.type == type_, Identity.value == value)
    )
