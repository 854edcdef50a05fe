"""Probes and API documentation."""

from __future__ import annotations


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_pings_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_openapi_documents_every_endpoint_with_errors(app, client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("auth.", "ops.")):
            path = rule.rule.replace("<string:", "{").replace("<", "{").replace(">", "}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method) in documented, (path, method)
    login = spec["paths"]["/auth/login"]["post"]
    assert {"200", "401", "422"} <= set(login["responses"])
    assert login["requestBody"]["content"]["application/json"]
    me = spec["paths"]["/auth/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert "401" in me["responses"]
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth"}


def test_openapi_describes_refresh_as_cookie_and_csrf_header_not_bearer(client):
    spec = client.get("/openapi.json").json
    for path, required in (("/auth/refresh_token", True), ("/auth/logout", False)):
        operation = spec["paths"][path]["post"]
        assert "security" not in operation, path
        params = {(p["in"], p["name"]): p["required"] for p in operation["parameters"]}
        assert params == {("cookie", "refresh_token"): required, ("header", "X-CSRF-TOKEN"): required}


def test_openapi_operation_ids_are_unique_and_errors_share_one_schema(client):
    spec = client.get("/openapi.json").json
    operations = [op for item in spec["paths"].values() for op in item.values() if isinstance(op, dict)]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)) and "getMe" in ids and "refreshToken" in ids
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "status", "error", "message"}
    assert "invalid_credentials" in error["properties"]["error"]["enum"]
    for name, response in spec["components"]["responses"].items():
        if "content" in response:
            assert response["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, name
    assert "PaginationMetadata" not in spec["components"]["schemas"]


def test_swagger_ui_is_served_without_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200 and b"swagger-ui" in page.data
    assert b"/docs/assets/swagger-ui-bundle.js" in page.data
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        with client.get(f"/docs/assets/{asset}") as response:
            assert response.status_code == 200 and response.data
