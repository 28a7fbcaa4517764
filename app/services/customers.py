"""Reading customers, with the one visibility rule: admins see their corp, reps their own."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import selectinload

from app.errors import NotFound
from app.extensions import db
from app.models import Customer, FollowRelation, Identity, IntentLevel, IntentScore, Staff, Tag, follow_tag
from app.schemas.common import Page
from app.services.auth import Principal
from app.services.paging import paginate


def visible(principal: Principal) -> Select:
    """Customers ``principal`` may see: the whole corp for an admin; for a rep, the customers
    they follow or once followed. Every customer read goes through here."""
    stmt = select(Customer).where(Customer.corp_id == principal.corp_id, Customer.merged_into_id.is_(None))
    if not principal.is_admin:
        stmt = stmt.where(
            exists().where(
                FollowRelation.customer_id == Customer.id,
                FollowRelation.staff_id == (principal.staff_id or -1),
            )
        )
    return stmt


def search(
    principal: Principal,
    *,
    page: int,
    per_page: int,
    staff: str | None = None,
    tag: int | None = None,
    channel: str | None = None,
    q: str | None = None,
    level: IntentLevel | None = None,
) -> Page:
    """Customers ``principal`` may see, newest first: by a rep who follows them (userid), a tag
    on any relation, a channel (first or last touch), text (name, company, remark, an identity's
    exact value) or card intent level (a rep: the level towards them)."""
    stmt = visible(principal)
    if staff:
        stmt = stmt.where(
            exists().where(
                FollowRelation.customer_id == Customer.id,
                FollowRelation.staff_id == Staff.id,
                Staff.userid == staff,
                Staff.corp_id == principal.corp_id,
            )
        )
    if tag is not None:
        stmt = stmt.where(
            exists().where(
                FollowRelation.customer_id == Customer.id,
                follow_tag.c.follow_id == FollowRelation.id,
                follow_tag.c.tag_id == tag,
            )
        )
    if level is not None:
        scored = (IntentScore.customer_id == Customer.id) & (IntentScore.level == level)
        if not principal.is_admin:
            scored &= IntentScore.staff_id == (principal.staff_id or -1)
        stmt = stmt.where(exists().where(scored))
    if channel:
        stmt = stmt.where(or_(Customer.first_channel == channel, Customer.last_channel == channel))
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(Customer.name).like(like),
                func.lower(Customer.corp_name).like(like),
                exists().where(FollowRelation.customer_id == Customer.id, func.lower(FollowRelation.remark).like(like)),
                exists().where(Identity.customer_id == Customer.id, Identity.value == q),
            )
        )
    return paginate(stmt, page, per_page, Customer.id.desc())


def names(principal: Principal, customer_ids: set[int]) -> dict[int, str]:
    """{id: name} of those customers ``principal`` may see; an admin also gets merged-away
    records (a decided merge suggestion still names both of its customers)."""
    if not customer_ids:
        return {}
    if principal.is_admin:
        stmt = select(Customer.id, Customer.name).where(Customer.corp_id == principal.corp_id)
    else:
        stmt = visible(principal).with_only_columns(Customer.id, Customer.name)
    return dict(db.session.execute(stmt.where(Customer.id.in_(customer_ids))).all())


@dataclass
class CustomerDetail:
    customer: Customer
    identities: list[Identity]
    follows: list[FollowRelation]
    tags: list[Tag]

    def __getattr__(self, name):  # the schema reads plain customer fields through the detail
        return getattr(self.customer, name)


def resolve_id(corp_id: int, customer_id: int) -> int | None:
    """Follow merge pointers so an old customer id keeps answering for the survivor."""
    seen = set()
    while customer_id not in seen:
        seen.add(customer_id)
        row = db.session.execute(
            select(Customer.id, Customer.merged_into_id).where(Customer.id == customer_id, Customer.corp_id == corp_id)
        ).first()
        if row is None:
            return None
        if row.merged_into_id is None:
            return row.id
        customer_id = row.merged_into_id
    return None


def get_detail(principal: Principal, customer_id: int) -> CustomerDetail:
    """A customer with identities, relations and tags; 404 when not visible to ``principal``
    (a rep must not learn that another rep's customer exists)."""
    survivor = resolve_id(principal.corp_id, customer_id)
    customer = survivor and db.session.scalar(visible(principal).where(Customer.id == survivor))
    if customer is None:
        raise NotFound("customer")
    follows = db.session.scalars(
        select(FollowRelation)
        .where(FollowRelation.customer_id == customer.id)
        .options(selectinload(FollowRelation.staff), selectinload(FollowRelation.tags))
        .order_by(FollowRelation.id)
    ).all()
    if not principal.is_admin:
        follows = [f for f in follows if f.staff_id == principal.staff_id]
    tags = {t.id: t for f in follows for t in f.tags}
    return CustomerDetail(customer, list(customer.identities), list(follows), list(tags.values()))
