"""Test helper: a snapshot of every fact row of some customers, to compare before and after."""

from sqlalchemy import select

from app.models import Customer, FollowRelation, follow_tag
from app.services import merge


def snapshot(db, customer_ids) -> dict:
    """Rows of every table holding these customers' ids (discovered as the merge does), the
    tags on their follow relations and their profile fields; ``updated_at`` left aside."""
    db.session.flush()
    db.session.expire_all()
    ids = list(customer_ids)
    facts: dict = {}
    for column in merge.customer_columns():
        rows = db.session.execute(select(column.table).where(column.in_(ids))).mappings().all()
        facts[f"{column.table.name}.{column.name}"] = sorted(
            tuple(sorted((k, repr(v)) for k, v in row.items() if k != "updated_at")) for row in rows
        )
    follow_ids = select(FollowRelation.id).where(FollowRelation.customer_id.in_(ids))
    facts["follow_tag"] = sorted(
        tuple(r) for r in db.session.execute(select(follow_tag).where(follow_tag.c.follow_id.in_(follow_ids)))
    )
    facts["customer"] = sorted(
        (c.id, c.name, c.avatar, c.gender, c.corp_name, c.first_channel, c.last_channel, c.merged_into_id)
        for c in db.session.scalars(select(Customer).where(Customer.id.in_(ids)))
    )
    return facts
