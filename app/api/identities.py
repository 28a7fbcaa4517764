"""OneID: GET /identities/resolve, the merge-suggestion queue and the identity-conflict queue."""

from app.api.routing import ApiBlueprint, current_principal
from app.schemas.common import page_of
from app.schemas.oneid import (
    ConflictQuery,
    ConflictSchema,
    DecisionBody,
    MergeResultSchema,
    ResolvedSchema,
    ResolveQuery,
    SuggestionQuery,
    SuggestionSchema,
)
from app.services import merge, oneid

bp = ApiBlueprint("api_identities", __name__, tag="identities")


@bp.operation("/identities/resolve", "GET", query=ResolveQuery, response=ResolvedSchema, roles=("admin", "rep"))
def resolve_identity(query):
    """The customer an identity (type, value) resolves to; merged customers answer with the survivor."""
    return oneid.resolve_as(current_principal(), query["type"], query["value"])


@bp.operation("/merge-suggestions", "GET", query=SuggestionQuery, response=page_of(SuggestionSchema))
def list_merge_suggestions(query):
    """Pairs of customers a weak signal (same unverified phone, same name and company) says may be one."""
    return merge.list_suggestions(current_principal(), **query)


@bp.operation("/merge-suggestions/<int:suggestion_id>/accept", "POST", body=DecisionBody, response=MergeResultSchema)
def accept_merge_suggestion(suggestion_id, body):
    """Merge the suggested pair into the older customer (audited with your reason)."""
    return merge.accept_suggestion(current_principal(), suggestion_id, body["reason"])


@bp.operation("/merge-suggestions/<int:suggestion_id>/reject", "POST", body=DecisionBody, response=SuggestionSchema)
def reject_merge_suggestion(suggestion_id, body):
    """Decide the pair are different people; they are not suggested again (audited)."""
    return merge.reject_suggestion(current_principal(), suggestion_id, body["reason"])


@bp.operation("/identity-conflicts", "GET", query=ConflictQuery, response=page_of(ConflictSchema))
def list_identity_conflicts(query):
    """Strong links refused because they would join two unionids or different verified phones."""
    return merge.list_conflicts(current_principal(), **query)


@bp.operation("/identity-conflicts/<int:conflict_id>/dismiss", "POST", body=DecisionBody, response=ConflictSchema)
def dismiss_identity_conflict(conflict_id, body):
    """Close a conflict as reviewed, keeping the customers apart (audited)."""
    return merge.dismiss_conflict(current_principal(), conflict_id, body["reason"])
