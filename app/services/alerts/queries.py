"""Reading alerts back: the API's list and detail (admins see the corp's; a rep only the
alerts about them or sent to them), and the alerts' rows on the customer timeline."""

from __future__ import annotations

from sqlalchemy import Integer, Select, String, cast, exists, literal, or_, select
from sqlalchemy.orm import selectinload

from app.errors import NotFound
from app.extensions import db
from app.models import Alert, AlertDelivery, AlertKind, DeliveryState, Staff
from app.schemas.common import Page
from app.services import timeline
from app.services.auth import Principal
from app.services.customers import resolve_id
from app.services.paging import paginate


def visible(principal: Principal) -> Select:
    """Alerts ``principal`` may see: the corp's for an admin; for a rep, alerts about them or
    delivered to them."""
    stmt = select(Alert).where(Alert.corp_id == principal.corp_id)
    if not principal.is_admin:
        me = principal.staff_id or -1
        stmt = stmt.where(
            or_(
                Alert.staff_id == me,
                exists().where(AlertDelivery.alert_id == Alert.id, AlertDelivery.staff_id == me),
            )
        )
    return stmt


def search(
    principal: Principal,
    *,
    page: int,
    per_page: int,
    staff: str | None = None,
    staff_id: int | None = None,
    customer: int | None = None,
    rule: int | None = None,
    kind: AlertKind | None = None,
    state: DeliveryState | None = None,
) -> Page:
    """Alerts, newest first, filtered by rep (userid or id), customer (merged ids follow the
    survivor), rule, kind or delivery state."""
    stmt = visible(principal).options(selectinload(Alert.deliveries))
    if staff:
        stmt = stmt.where(
            Alert.staff_id.in_(select(Staff.id).where(Staff.corp_id == principal.corp_id, Staff.userid == staff))
        )
    if staff_id is not None:
        stmt = stmt.where(Alert.staff_id == staff_id)
    if customer is not None:
        stmt = stmt.where(Alert.customer_id.in_(_customer_group(principal.corp_id, customer)))
    if rule is not None:
        stmt = stmt.where(Alert.rule_id == rule)
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    if state is not None:
        delivery = (AlertDelivery.alert_id == Alert.id) & (AlertDelivery.state == state)
        if not principal.is_admin:
            delivery &= AlertDelivery.staff_id == (principal.staff_id or -1)
        stmt = stmt.where(exists().where(delivery))
    return paginate(stmt, page, per_page, Alert.occurred_at.desc(), Alert.id.desc())


def _customer_group(corp_id: int, customer_id: int) -> list[int]:
    """The customer and everyone merged into it (alerts keep the id they were raised with)."""
    from app.services import merge

    root = resolve_id(corp_id, customer_id)
    return merge.group_ids(corp_id, root) if root is not None else [customer_id]


def get(principal: Principal, alert_id: int) -> Alert:
    """One alert with its deliveries; 404 when not visible to ``principal``."""
    alert = db.session.scalar(visible(principal).where(Alert.id == alert_id).options(selectinload(Alert.deliveries)))
    if alert is None:
        raise NotFound("alert")
    return alert


@timeline.source("alert")
def _timeline(corp_id: int, customer_ids: list[int]) -> Select:
    """Each alert about the customer, as ``alert.<kind>`` with its title."""
    return select(
        Alert.occurred_at.label("at"),
        (literal("alert.", String) + cast(Alert.kind, String)).label("kind"),
        Alert.customer_id.label("customer_id"),
        cast(Alert.staff_id, Integer).label("staff_id"),
        literal("alert", String).label("ref_type"),
        Alert.id.label("ref_id"),
        cast(Alert.title, String).label("detail"),
        cast(literal("system", String), String).label("actor"),
    ).where(Alert.corp_id == corp_id, Alert.customer_id.in_(customer_ids))
