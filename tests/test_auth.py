from datetime import timedelta

from sqlalchemy import update

from app.models import ApiToken, utcnow
from app.services import auth


def test_token_for_good_credentials(client, api_auth):
    """Does a correct username and password give a working bearer token?"""
    user = api_auth.user()
    resp = client.post("/api/v1/auth/token", json={"username": user.username, "password": "correct-horse"})
    assert resp.status_code == 201
    assert resp.json["role"] == "admin"
    headers = {"Authorization": f"Bearer {resp.json['token']}"}
    assert client.get("/api/v1/staff", headers=headers).status_code == 200


def test_bad_password_is_refused(client, api_auth):
    """Does a wrong password answer 401 with the error envelope?"""
    user = api_auth.user()
    resp = client.post("/api/v1/auth/token", json={"username": user.username, "password": "wrong"})
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "invalid_credentials"


def test_unknown_user_is_refused_like_a_bad_password(client, corp):
    """Does an unknown username look exactly like a wrong password?"""
    resp = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "whatever"})
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "invalid_credentials"


def test_repeated_failures_are_rate_limited(client, api_auth):
    """After too many failed sign-ins, is even the right password refused for a while?"""
    user = api_auth.user()
    for _ in range(auth.MAX_FAILED_LOGINS):
        client.post("/api/v1/auth/token", json={"username": user.username, "password": "nope"})
    resp = client.post("/api/v1/auth/token", json={"username": user.username, "password": "correct-horse"})
    assert resp.status_code == 429


def test_missing_token(client, corp):
    """Does an API call without a token answer 401?"""
    resp = client.get("/api/v1/staff")
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "unauthorized"


def test_forged_token(client, corp):
    """Does a made-up token answer 401?"""
    assert client.get("/api/v1/staff", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_expired_token(client, db, api_auth):
    """Is a token refused once it has expired?"""
    headers = api_auth.headers()
    db.session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert client.get("/api/v1/staff", headers=headers).status_code == 401


def test_revoked_token(client, api_auth):
    """Is a token refused after DELETE /auth/token revoked it?"""
    headers = api_auth.headers()
    assert client.delete("/api/v1/auth/token", headers=headers).status_code == 204
    assert client.get("/api/v1/staff", headers=headers).status_code == 401


def test_rep_may_not_use_admin_routes(client, api_auth, corp):
    """Does a rep's token get 403 on an admin-only route?"""
    headers = api_auth.headers("rep")
    resp = client.get("/api/v1/staff", headers=headers)
    assert resp.status_code == 403
    assert resp.json["error"]["code"] == "forbidden"


def test_tokens_are_stored_hashed(db, api_auth):
    """Is the raw token absent from the database?"""
    raw = api_auth.headers()["Authorization"].split()[1]
    hashes = [t.token_hash for t in db.session.query(ApiToken)]
    assert raw not in hashes and len(hashes) == 1


def test_create_admin_command(runner, db):
    """Does `flask create-admin` create a user that can sign in, and refuse a duplicate?"""
    result = runner.invoke(args=["create-admin", "boss", "--password", "long-enough"])
    assert result.exit_code == 0, result.output
    assert "created admin boss" in result.output
    again = runner.invoke(args=["create-admin", "boss", "--password", "long-enough"])
    assert again.exit_code != 0
    quiet = runner.invoke(args=["create-admin", "boss", "--password", "long-enough", "--exist-ok"])
    assert quiet.exit_code == 0


def test_create_admin_refuses_a_short_password(runner, db):
    """Does create-admin refuse a password under 8 characters?"""
    result = runner.invoke(args=["create-admin", "boss", "--password", "short"])
    assert result.exit_code != 0
    assert "at least 8" in result.output
