"""Small builders for test rows; each commits and returns the row."""

from __future__ import annotations

import itertools

from app.extensions import db
from app.models import Customer, FollowRelation, Identity, IdentityType, Staff, Tag

_seq = itertools.count(1)


def staff(corp, userid=None, name=None, **kw) -> Staff:
    n = next(_seq)
    row = Staff(corp_id=corp.id, userid=userid or f"rep{n}", name=name or f"Rep {n}", **kw)
    db.session.add(row)
    db.session.commit()
    return row


def customer(corp, name=None, identities=(), **kw) -> Customer:
    n = next(_seq)
    row = Customer(corp_id=corp.id, name=name or f"Customer {n}", **kw)
    db.session.add(row)
    db.session.flush()
    for type_, value in identities:
        db.session.add(
            Identity(corp_id=corp.id, customer_id=row.id, type=IdentityType(type_), value=value, source="test")
        )
    db.session.commit()
    return row


def tag(corp, name, group="group") -> Tag:
    row = Tag(corp_id=corp.id, wecom_tag_id=f"et{next(_seq)}", group_name=group, name=name)
    db.session.add(row)
    db.session.commit()
    return row


def follow(corp, staff_row, customer_row, tags=(), **kw) -> FollowRelation:
    row = FollowRelation(corp_id=corp.id, staff_id=staff_row.id, customer_id=customer_row.id, **kw)
    row.tags = list(tags)
    db.session.add(row)
    db.session.commit()
    return row
