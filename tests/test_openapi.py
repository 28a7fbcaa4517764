from openapi_spec_validator import validate


def test_openapi_document_is_valid(client):
    """Is /api/v1/openapi.json a valid OpenAPI 3 document?"""
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    validate(resp.json)


def test_openapi_lists_every_api_route(app, client):
    """Does the OpenAPI document describe every route and method under /api/v1 and /mp/v1?"""
    import re

    spec = client.get("/api/v1/openapi.json").json
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/v1/", "/mp/v1/")) and rule.rule != "/api/v1/openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes and routes == documented


def test_openapi_schemas_come_from_marshmallow(client):
    """Are request and response bodies described by the marshmallow schemas?"""
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert {"TokenRequest", "CustomerDetail", "Error"} <= set(schemas)
    assert "password" in schemas["TokenRequest"]["properties"]


def test_file_answers_and_mini_program_sessions_are_described(client):
    """Are the poster and CSV documented with their media types, and /mp/v1 with its session
    scheme (none for getting a session)?"""
    spec = client.get("/api/v1/openapi.json").json
    poster = spec["paths"]["/api/v1/contact-codes/{code_id}/poster.png"]["get"]["responses"]["200"]
    csv = spec["paths"]["/api/v1/contact-codes/{code_id}/stats.csv"]["get"]["responses"]["200"]
    assert list(poster["content"]) == ["image/png"] and list(csv["content"]) == ["text/csv"]
    assert spec["paths"]["/mp/v1/events"]["post"]["security"] == [{"mpSession": []}]
    assert "security" not in spec["paths"]["/mp/v1/session"]["post"]
