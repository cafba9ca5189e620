"""The OpenAPI document lists every route of the REST contract (SRS-054)."""

from __future__ import annotations

import re

import pytest

from tests.integration.api.api_support import Api, expect

ROUTES = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/me"),
    ("get", "/api/v1/auth/sessions"),
    ("delete", "/api/v1/auth/sessions/{}"),
    ("post", "/api/v1/auth/sessions/revoke-all"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{}"),
    ("patch", "/api/v1/users/{}"),
    ("delete", "/api/v1/users/{}"),
    ("put", "/api/v1/users/{}/password"),
    ("put", "/api/v1/users/{}/status"),
    ("put", "/api/v1/users/{}/role"),
    ("post", "/api/v1/users/{}/verify"),
    ("get", "/api/public/users"),
    ("get", "/api/public/users/{}"),
    ("get", "/.well-known/jwks.json"),
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.mark.req("SRS-054")
async def test_openapi_lists_every_route(sqlite_api: Api) -> None:
    response = await sqlite_api.client.get("/schema/openapi.json")
    schema = expect(response, 200)
    assert schema["openapi"].startswith("3.")
    documented = {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in schema["paths"].items()
        for method in item
        if method in METHODS
    }
    missing = ROUTES - documented
    assert not missing, f"routes missing from OpenAPI: {sorted(missing)}"
    # Public endpoints are read-only in the document too.
    for path, item in schema["paths"].items():
        if path.startswith("/api/public/"):
            assert set(item) & METHODS == {"get"}, (path, sorted(item))


@pytest.mark.req("SRS-054")
async def test_openapi_declares_bearer_auth_and_error_responses(sqlite_api: Api) -> None:
    schema = expect(await sqlite_api.client.get("/schema/openapi.json"), 200)
    schemes = schema.get("components", {}).get("securitySchemes", {})
    assert any(s.get("type") == "http" and s.get("scheme", "").lower() == "bearer" for s in schemes.values()), schemes
    me = schema["paths"]["/api/v1/auth/me"]["get"]
    assert "401" in me["responses"], sorted(me["responses"])
    register = schema["paths"]["/api/v1/auth/register"]["post"]
    assert "201" in register["responses"], sorted(register["responses"])
