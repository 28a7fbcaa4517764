"""/handovers: staff departure and hand-over of customers and group chats."""

from app.api.routing import ApiBlueprint, current_principal
from app.schemas.common import page_of
from app.schemas.handover import (
    CancelSchema,
    HandoverChatQuery,
    HandoverChatSchema,
    HandoverCreateSchema,
    HandoverItemQuery,
    HandoverItemSchema,
    HandoverPolicySchema,
    HandoverPreviewSchema,
    HandoverQuery,
    HandoverSchema,
)
from app.services import handover

bp = ApiBlueprint("api_handovers", __name__, tag="handovers")


@bp.operation("/handovers", "GET", query=HandoverQuery, response=page_of(HandoverSchema), roles=("admin", "rep"))
def list_handovers(query):
    """List hand-overs, newest first, with their counts per state."""
    return handover.search(current_principal(), **query)


@bp.operation("/handovers", "POST", body=HandoverCreateSchema, response=HandoverSchema, status=201)
def create_handover(body):
    """Hand a rep's customers (all or chosen) and group chats over, by policy, to a successor or by an explicit plan."""
    created = handover.create(current_principal(), handover.Request(**body))
    return handover.get(current_principal(), created.id)


@bp.operation("/handovers/dry_run", "POST", body=HandoverCreateSchema, response=HandoverPreviewSchema)
def dry_run_handover(body):
    """Preview the plan of a hand-over (who takes which customer and chat) without storing anything."""
    return handover.dry_run(current_principal(), handover.Request(**body))


@bp.operation("/handovers/policy", "GET", response=HandoverPolicySchema)
def get_policy():
    """The corp's hand-over policy."""
    return handover.get_policy(current_principal())


@bp.operation("/handovers/policy", "PUT", body=HandoverPolicySchema, response=HandoverPolicySchema)
def put_policy(body):
    """Change the corp's hand-over policy (only the fields sent)."""
    return handover.set_policy(current_principal(), body)


@bp.operation("/handovers/<int:handover_id>", "GET", response=HandoverSchema, roles=("admin", "rep"))
def get_handover(handover_id):
    """One hand-over with its counts per state."""
    return handover.get(current_principal(), handover_id)


@bp.operation("/handovers/<int:handover_id>/approve", "POST", response=HandoverSchema)
def approve_handover(handover_id):
    """Approve a hand-over waiting for approval; it starts at once."""
    handover.approve(current_principal(), handover_id)
    return handover.get(current_principal(), handover_id)


@bp.operation("/handovers/<int:handover_id>/cancel", "POST", body=CancelSchema, response=HandoverSchema)
def cancel_handover(handover_id, body):
    """Cancel a hand-over: nothing more is sent; transfers WeCom already has are followed to the end."""
    handover.cancel(current_principal(), handover_id, body.get("reason"))
    return handover.get(current_principal(), handover_id)


@bp.operation(
    "/handovers/<int:handover_id>/customers",
    "GET",
    query=HandoverItemQuery,
    response=page_of(HandoverItemSchema),
    roles=("admin", "rep"),
)
def list_handover_customers(handover_id, query):
    """The hand-over's customers with their state and history."""
    return handover.customers(current_principal(), handover_id, **query)


@bp.operation(
    "/handovers/<int:handover_id>/group_chats",
    "GET",
    query=HandoverChatQuery,
    response=page_of(HandoverChatSchema),
    roles=("admin", "rep"),
)
def list_handover_group_chats(handover_id, query):
    """The hand-over's group chats with their state, day and history."""
    return handover.group_chats(current_principal(), handover_id, **query)
