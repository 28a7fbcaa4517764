"""POST/DELETE /auth/token: bearer tokens for the admin API."""

from flask import request

from app.api.routing import ApiBlueprint
from app.schemas.auth import TokenRequestSchema, TokenSchema
from app.services import auth

bp = ApiBlueprint("api_auth", __name__, tag="auth")


@bp.operation("/auth/token", "POST", body=TokenRequestSchema, response=TokenSchema, status=201, roles=())
def create_token(body):
    """Exchange a username and password for a bearer token."""
    raw, token = auth.issue_token(body["username"], body["password"], client=request.remote_addr or "")
    return {"token": raw, "expires_at": token.expires_at, "role": token.user.role}


@bp.operation("/auth/token", "DELETE", roles=("admin", "rep"))
def revoke_token():
    """Revoke the token this request is made with."""
    auth.revoke_token(request.headers.get("Authorization"))
