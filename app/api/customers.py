"""GET /customers and /customers/<id>; OneID: merge, unmerge, merges and the timeline."""

from app.api.routing import ApiBlueprint, current_principal
from app.schemas.common import page_of
from app.schemas.customer import CustomerDetailSchema, CustomerQuery, CustomerSchema
from app.schemas.oneid import (
    MergeBody,
    MergeRecordSchema,
    MergeResultSchema,
    MergesQuery,
    TimelineEntrySchema,
    TimelineQuery,
    UnmergeBody,
)
from app.services import customers, merge, timeline

bp = ApiBlueprint("api_customers", __name__, tag="customers")


@bp.operation("/customers", "GET", query=CustomerQuery, response=page_of(CustomerSchema), roles=("admin", "rep"))
def list_customers(query):
    """List the customers you may see, filtered by rep, tag, channel or text."""
    return customers.search(current_principal(), **query)


@bp.operation("/customers/<int:customer_id>", "GET", response=CustomerDetailSchema, roles=("admin", "rep"))
def get_customer(customer_id):
    """One customer with identities, follow relations and tags."""
    return customers.get_detail(current_principal(), customer_id)


@bp.operation("/customers/merge", "POST", body=MergeBody, response=MergeResultSchema, status=201)
def merge_customers(body):
    """Merge customers into the oldest of them, moving every fact (audited with your reason)."""
    return merge.merge_as(current_principal(), body["ids"], body["reason"])


@bp.operation("/customers/<int:customer_id>/unmerge", "POST", body=UnmergeBody, response=MergeRecordSchema)
def unmerge_customer(customer_id, body):
    """Undo one of this customer's merges exactly (audited with your reason)."""
    return merge.unmerge_as(current_principal(), customer_id, body["merge_id"], body["reason"])


@bp.operation("/customers/<int:customer_id>/merges", "GET", query=MergesQuery, response=page_of(MergeRecordSchema))
def list_customer_merges(customer_id, query):
    """The merges this customer (or any customer merged into it) took part in."""
    return merge.merges_of(current_principal(), customer_id, **query)


@bp.operation(
    "/customers/<int:customer_id>/timeline",
    "GET",
    query=TimelineQuery,
    response=page_of(TimelineEntrySchema),
    roles=("admin", "rep"),
)
def customer_timeline(customer_id, query):
    """Everything that happened to the customer across its merged ids, newest first."""
    return timeline.for_customer(current_principal(), customer_id, **query)
