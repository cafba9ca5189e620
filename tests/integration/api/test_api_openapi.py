"""The OpenAPI document lists every route of the REST contract (SRS-054) and says what the service does (SRS-156)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.integration.api.api_support import PASSWORD, PUBLIC, V1, Api, assert_problem, expect
from tests.integration.api.conftest import OpenApi

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
    ("get", "/.well-known/jwks.json"),
    ("post", "/api/v1/auth/validate"),
    ("post", "/api/v1/auth/password/forgot"),
    ("post", "/api/v1/auth/password/reset"),
    ("post", "/api/v1/auth/email/resend"),
    ("post", "/api/v1/auth/email/verify"),
    ("get", "/api/v1/audit"),
}
DIRECTORY = {("get", "/api/public/users"), ("get", "/api/public/users/{}")}
METHODS = {"get", "post", "put", "patch", "delete"}


def documented(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in schema["paths"].items()
        for method in item
        if method in METHODS
    }


@pytest.mark.req("SRS-054")
async def test_openapi_lists_every_route(open_api: OpenApi) -> None:
    async with open_api(public_directory=True) as api:
        schema = expect(await api.client.get("/schema/openapi.json"), 200)
    assert schema["openapi"].startswith("3.")
    missing = (ROUTES | DIRECTORY) - documented(schema)
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


# What a client must send, per request body: the document must say so (SRS-156).
REQUIRED_FIELDS = {
    "RegisterIn": {"username", "email", "password"},
    "LoginIn": {"username_or_email", "password"},
    "RefreshIn": {"refresh_token"},
    "ValidateIn": {"access_token"},
    "RevokeAllIn": set(),
    "UserCreateIn": {"username", "email", "password"},
    "UserPatchIn": set(),
    "PasswordChangeIn": {"current_password", "new_password"},
    "StatusIn": {"status"},
    "RoleIn": {"role"},
    "EmailIn": {"email"},
    "ResetIn": {"token", "new_password"},
    "VerifyIn": {"token"},
}
# Readable operation ids; where gRPC has the same call, the same words (UserService/GetUser -> users.get).
OPERATION_IDS = {
    ("post", "/api/v1/auth/register"): "auth.register",
    ("post", "/api/v1/auth/login"): "auth.login",
    ("post", "/api/v1/auth/refresh"): "auth.refresh",
    ("post", "/api/v1/auth/validate"): "auth.validate_token",
    ("post", "/api/v1/auth/logout"): "auth.logout",
    ("get", "/api/v1/auth/me"): "auth.me",
    ("get", "/api/v1/auth/sessions"): "auth.list_sessions",
    ("delete", "/api/v1/auth/sessions/{}"): "auth.revoke_session",
    ("post", "/api/v1/auth/sessions/revoke-all"): "auth.revoke_all_sessions",
    ("post", "/api/v1/auth/password/forgot"): "auth.forgot_password",
    ("post", "/api/v1/auth/password/reset"): "auth.reset_password",
    ("post", "/api/v1/auth/email/resend"): "auth.resend_verification",
    ("post", "/api/v1/auth/email/verify"): "auth.verify_email",
    ("get", "/api/v1/audit"): "audit.list_events",
    ("get", "/.well-known/jwks.json"): "auth.jwks",
    ("get", "/api/v1/users"): "users.list",
    ("post", "/api/v1/users"): "users.create",
    ("get", "/api/v1/users/{}"): "users.get",
    ("patch", "/api/v1/users/{}"): "users.update",
    ("delete", "/api/v1/users/{}"): "users.delete",
    ("put", "/api/v1/users/{}/password"): "users.change_password",
    ("put", "/api/v1/users/{}/status"): "users.set_status",
    ("put", "/api/v1/users/{}/role"): "users.set_role",
    ("post", "/api/v1/users/{}/verify"): "users.verify",
    ("get", "/api/public/users"): "public.list_users",
    ("get", "/api/public/users/{}"): "public.get_user",
    ("get", "/health/live"): "health.live",
    ("get", "/health/ready"): "health.ready",
}


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, re.sub(r"\{[^}]+\}", "{}", path), operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def component(schema: dict[str, Any], media: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The component a body refers to (``T`` or ``T | None``, which is a oneOf with null)."""
    refs = [media["schema"], *media["schema"].get("oneOf", ())]
    ref = next(item["$ref"] for item in refs if "$ref" in item)
    name = ref.rsplit("/", 1)[1]
    return name, schema["components"]["schemas"][name]


def validator(schema: dict[str, Any], name: str) -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": schema["components"]}
    )


@pytest.fixture
async def document(open_api: OpenApi) -> AsyncIterator[tuple[Api, dict[str, Any]]]:
    async with open_api(public_directory=True) as api:
        yield api, expect(await api.client.get("/schema/openapi.json"), 200)


@pytest.mark.req("SRS-156")
async def test_required_fields_are_marked_required(document: tuple[Api, dict[str, Any]]) -> None:
    api, schema = document
    bodies = {
        component(schema, op["requestBody"]["content"]["application/json"])[0]
        for *_, op in operations(schema)
        if "requestBody" in op
    }
    assert bodies == set(REQUIRED_FIELDS), bodies
    for name, fields in REQUIRED_FIELDS.items():
        assert set(schema["components"]["schemas"][name].get("required", [])) == fields, name
        assert schema["components"]["schemas"][name]["additionalProperties"] is False, name  # unknown fields: 400
    # ...while the service still names every missing field in one answer.
    response = await api.client.post(f"{V1}/auth/register", json={"first_name": "Only"})
    assert_problem(response, 400, "username", "email", "password")
    response = await api.client.post(f"{V1}/users", json={}, headers=api.admin_headers)
    assert_problem(response, 400, "username", "email", "password")


@pytest.mark.req("SRS-156")
async def test_operation_ids_are_readable_and_unique(document: tuple[Api, dict[str, Any]]) -> None:
    _, schema = document
    found = {(method, path): op.get("operationId") for method, path, op in operations(schema)}
    assert found == OPERATION_IDS
    for operation_id in found.values():
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", str(operation_id)), operation_id


@pytest.mark.req("SRS-156")
async def test_every_body_has_an_example_that_matches_its_schema(document: tuple[Api, dict[str, Any]]) -> None:
    _, schema = document
    checked = set()
    for method, path, op in operations(schema):
        media = [op["requestBody"]["content"]["application/json"]] if "requestBody" in op else []
        for status, response in op["responses"].items():
            media += [content for type_, content in response.get("content", {}).items() if "json" in type_]
            if status.startswith("2"):
                assert response.get("content") or status == "204", (method, path, status)
        for content in media:
            name, body = component(schema, content)
            examples = body.get("examples")
            assert examples, f"{method} {path}: {name} has no example"
            for example in examples:
                errors = [error.message for error in validator(schema, name).iter_errors(example)]
                assert not errors, (name, example, errors)
            checked.add(name)
    assert {"TokenOut", "UserOut", "UserPageOut", "ProblemDetails", "RegisterIn"} <= checked, checked


@pytest.mark.req("SRS-156")
async def test_the_examples_are_what_the_service_accepts_and_answers(document: tuple[Api, dict[str, Any]]) -> None:
    api, schema = document
    examples = {
        name: body["examples"][0] for name, body in schema["components"]["schemas"].items() if body.get("examples")
    }

    def answers(response: httpx.Response, status: int, name: str) -> Any:
        body = expect(response, status)
        errors = [error.message for error in validator(schema, name).iter_errors(body)]
        assert not errors, (name, body, errors)
        return body

    registered = answers(await api.client.post(f"{V1}/auth/register", json=examples["RegisterIn"]), 201, "TokenOut")
    login = answers(await api.client.post(f"{V1}/auth/login", json=examples["LoginIn"]), 200, "TokenOut")
    me = {"Authorization": f"Bearer {login['access_token']}"}
    user_id = registered["user"]["id"]
    answers(await api.client.patch(f"{V1}/users/{user_id}", json=examples["UserPatchIn"], headers=me), 200, "UserOut")
    answers(await api.client.get(f"{V1}/auth/sessions", headers=me), 200, "SessionsOut")
    response = await api.client.put(f"{V1}/users/{user_id}/password", json=examples["PasswordChangeIn"], headers=me)
    expect(response, 204)
    answers(
        await api.client.post(f"{V1}/auth/sessions/revoke-all", json=examples["RevokeAllIn"], headers=me),
        200,
        "RevokedOut",
    )

    admin = api.admin_headers
    created = answers(
        await api.client.post(f"{V1}/users", json=examples["UserCreateIn"], headers=admin), 201, "UserOut"
    )
    for route, name in (("status", "StatusIn"), ("role", "RoleIn")):
        response = await api.client.put(f"{V1}/users/{created['id']}/{route}", json=examples[name], headers=admin)
        answers(response, 200, "UserOut")
    answers(await api.client.get(f"{V1}/users", headers=admin), 200, "UserPageOut")
    answers(await api.client.get(f"{PUBLIC}/users"), 200, "PublicPage")
    answers(await api.client.get(f"{V1}/audit", headers=admin), 200, "AuditPageOut")
    for route in ("password/forgot", "email/resend"):
        answers(await api.client.post(f"{V1}/auth/{route}", json=examples["EmailIn"]), 202, "AcceptedOut")
    # Token examples are well-formed but not live: the service reads them and says they are not valid.
    for route, name in (("refresh", "RefreshIn"), ("validate", "ValidateIn")):
        answers(await api.client.post(f"{V1}/auth/{route}", json=examples[name]), 401, "ProblemDetails")
    for route, name in (("password/reset", "ResetIn"), ("email/verify", "VerifyIn")):
        answers(await api.client.post(f"{V1}/auth/{route}", json=examples[name]), 400, "ProblemDetails")


@pytest.mark.req("SRS-156")
async def test_error_responses_say_what_went_wrong_on_that_route(document: tuple[Api, dict[str, Any]]) -> None:
    _, schema = document
    login = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "credentials" in login["401"]["description"].lower(), login["401"]
    assert "token" not in login["401"]["description"].lower(), login["401"]
    refresh = schema["paths"]["/api/v1/auth/refresh"]["post"]["responses"]
    assert "refresh token" in refresh["401"]["description"].lower(), refresh["401"]
    for method, path, op in operations(schema):
        if "requestBody" in op:
            for status in ("400", "413", "415"):
                assert status in op["responses"], f"{method} {path} does not document {status}"
        for status, response in op["responses"].items():
            # Our problem documents, never the framework's own error shape (readiness's 503 names its checks).
            if int(status) >= 400 and path != "/health/ready":
                assert set(response["content"]) == {"application/problem+json"}, (method, path, status)
                assert component(schema, response["content"]["application/problem+json"])[0] == "ProblemDetails"


def body_schema(schema: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    body: dict[str, Any] = component(
        schema, schema["paths"][path][method]["requestBody"]["content"]["application/json"]
    )[1]
    return body


@pytest.mark.req("SRS-142")
async def test_the_document_states_the_rules_json_schema_can_say(document: tuple[Api, dict[str, Any]]) -> None:
    """What schemathesis found the service refusing although the document allowed it."""
    api, schema = document
    for path in (f"{V1}/auth/register", f"{V1}/users"):
        fields = body_schema(schema, path)["properties"]
        assert fields["username"]["pattern"] == "^[A-Za-z0-9_.-]{3,32}$", path
        assert fields["email"]["format"] == "email", path
        assert fields["password"]["minLength"] == 8, path
    assert body_schema(schema, f"{V1}/users")["properties"]["role"]["enum"] == ["admin", "user", "guest"]
    assert body_schema(schema, f"{V1}/auth/password/forgot")["properties"]["email"]["format"] == "email"
    assert body_schema(schema, f"{V1}/auth/password/reset")["properties"]["new_password"]["minLength"] == 8
    change = body_schema(schema, f"{V1}/users/{{user_id}}/password", "put")["properties"]
    assert change["new_password"]["minLength"] == 8
    assert "minLength" not in change["current_password"]  # whatever it is, it is checked, not ruled
    patch_email = body_schema(schema, f"{V1}/users/{{user_id}}", "patch")["properties"]["email"]["oneOf"]
    assert {"type": "string", "format": "email"} in patch_email
    # The pattern is the service's own rule: what it refuses, the document refuses too.
    pattern = re.compile(body_schema(schema, f"{V1}/auth/register")["properties"]["username"]["pattern"])
    for username in ("ab", "a" * 33, "white space", "ünï"):
        assert not pattern.search(username)
        response = await api.client.post(
            f"{V1}/auth/register", json={"username": username, "email": "rule@example.com", "password": PASSWORD}
        )
        assert_problem(response, 400, "username")
    # The service still names every bad field in one answer (the rules are not enforced by the decoder).
    response = await api.client.post(f"{V1}/auth/register", json={"username": "x", "email": "no", "password": "short"})
    assert_problem(response, 400, "username", "email", "password")


@pytest.mark.req("SRS-142")
async def test_revoke_all_says_its_body_is_optional(document: tuple[Api, dict[str, Any]]) -> None:
    api, schema = document
    operation = schema["paths"][f"{V1}/auth/sessions/revoke-all"]["post"]
    assert operation["requestBody"]["required"] is False
    required = [
        (method, path) for method, path, op in operations(schema) if op.get("requestBody", {}).get("required") is False
    ]
    assert required == [("post", f"{V1}/auth/sessions/revoke-all")]  # every other body is required
    user = await api.register("bodiless")
    expect(await api.client.post(f"{V1}/auth/sessions/revoke-all", headers=user.headers), 200)


@pytest.mark.req("SRS-142")
async def test_rate_limited_login_register_and_refresh_answer_a_documented_429(open_api: OpenApi) -> None:
    async with open_api(
        rate_limits=True, limit_register_address="1/3600", limit_login_address="1/60", limit_refresh_session="1/60"
    ) as api:
        schema = expect(await api.client.get("/schema/openapi.json"), 200)
        for name in ("register", "login", "refresh"):
            responses = schema["paths"][f"{V1}/auth/{name}"]["post"]["responses"]
            assert "429" in responses, name
            assert set(responses["429"]["content"]) == {"application/problem+json"}, name
        user = await api.register("limited")
        response = await api.client.post(
            f"{V1}/auth/register", json={"username": "second", "email": "second@example.com", "password": PASSWORD}
        )
        assert_problem(response, 429)
        assert response.headers["retry-after"].isdigit()
        assert_problem(await api.try_login("limited", "wrong password here"), 401)
        response = await api.try_login("limited", "wrong password again")
        assert_problem(response, 429)
        rotated = expect(await api.refresh(user.refresh), 200)
        assert_problem(await api.refresh(rotated["refresh_token"]), 429)
