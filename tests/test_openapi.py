from openapi_spec_validator import validate


def test_openapi_document_is_valid(client):
    """Is /api/v1/openapi.json a valid OpenAPI 3 document?"""
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    validate(resp.json)


def test_openapi_lists_every_api_route(app, client):
    """Does the OpenAPI document describe every route and method under /api/v1?"""
    import re

    spec = client.get("/api/v1/openapi.json").json
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes and routes == documented


def test_openapi_schemas_come_from_marshmallow(client):
    """Are request and response bodies described by the marshmallow schemas?"""
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert {"TokenRequest", "CustomerDetail", "Error"} <= set(schemas)
    assert "password" in schemas["TokenRequest"]["properties"]
