"""Helpers for the REST API suite: a client wrapper that knows the contract, and shape assertions.

Everything here asserts the contract of the REST API (docs/SPEC.md SRS-040..054); nothing reads
implementation internals except the container's ``users.create_admin`` bootstrap and its engine (SQL).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
from litestar import Litestar

from py_app.config import Settings

V1 = "/api/v1"
PUBLIC = "/api/public"
JWT_SECRET = "integration-suite-signing-secret-0123456789abcdef"  # 48 bytes, >= 256 bits
PASSWORD = "violet-harbour-lantern-42"  # not in the common-password list
ADMIN_USERNAME, ADMIN_EMAIL, ADMIN_PASSWORD = "root_admin", "root@example.com", "admin-orchid-compass-97"

USER_FIELDS = frozenset(
    {
        "id",
        "username",
        "email",
        "first_name",
        "last_name",
        "phone",
        "avatar_url",
        "role",
        "status",
        "is_verified",
        "created_at",
        "updated_at",
        "last_login_at",
    }
)
TOKEN_FIELDS = frozenset({"access_token", "refresh_token", "token_type", "expires_in", "user"})


def detail(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text[:600]}"


def expect(response: httpx.Response, status: int) -> Any:
    """Assert the status (showing the body when it differs) and return the JSON body, if any."""
    assert response.status_code == status, detail(response)
    if status == 204 or not response.content:
        return None
    return response.json()


def assert_problem(response: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    """RFC 9457 problem details: media type, type URI, title, status, detail; ``fields`` must be named in errors."""
    assert response.status_code == status, detail(response)
    assert response.status_code != 500
    assert response.headers.get("content-type", "").startswith("application/problem+json"), detail(response)
    body = response.json()
    assert isinstance(body.get("type"), str), body
    assert ":" in body["type"], f"type should be a URI: {body}"
    assert isinstance(body.get("title"), str), body
    assert body["title"], body
    assert body.get("status") == status, body
    assert isinstance(body.get("detail"), str), body
    if status == 401:
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), detail(response)
    if fields:
        errors = body.get("errors")
        assert isinstance(errors, list), f"validation problem without errors: {body}"
        for error in errors:
            assert isinstance(error.get("field"), str), body
            assert isinstance(error.get("message"), str), body
            assert error["message"], body
        named = {error["field"] for error in errors}
        for wanted in fields:
            assert any(wanted == name or name.endswith(f".{wanted}") for name in named), (
                f"errors do not name {wanted!r}: {errors}"
            )
    return cast(dict[str, Any], body)


def parse_time(value: Any) -> datetime:
    """RFC 3339 with an explicit UTC offset (Z or +00:00)."""
    assert isinstance(value, str), value
    assert "T" in value, value
    assert value.endswith(("Z", "+00:00")), f"not UTC RFC 3339: {value}"
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


def assert_user(user: Any, **expected: Any) -> dict[str, Any]:
    """The public user representation: every contract field, never a password hash."""
    assert isinstance(user, dict), user
    assert set(user) >= USER_FIELDS, f"missing fields {USER_FIELDS - set(user)} in {user}"
    assert "password_hash" not in user, user
    assert not any("password" in key for key in user), user
    assert str(uuid.UUID(user["id"])) == user["id"], user["id"]
    assert user["role"] in {"admin", "user", "guest"}, user
    assert user["status"] in {"active", "inactive", "suspended"}, user
    assert isinstance(user["is_verified"], bool), user
    parse_time(user["created_at"])
    parse_time(user["updated_at"])
    if user["last_login_at"] is not None:
        parse_time(user["last_login_at"])
    for key, value in expected.items():
        assert user[key] == value, f"{key}: {user[key]!r} != {value!r}"
    return user


def assert_no_password_hash(response: httpx.Response) -> None:
    assert "password_hash" not in response.text
    assert "$argon2" not in response.text


@dataclass
class Login:
    """One authenticated session: its tokens and the user as the API returned it."""

    user: dict[str, Any]
    access: str
    refresh: str
    body: dict[str, Any] = field(repr=False)

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_token_response(response: httpx.Response, status: int) -> Login:
    body = expect(response, status)
    assert set(body) >= TOKEN_FIELDS, body
    assert body["token_type"] == "Bearer", body
    assert isinstance(body["expires_in"], int), body
    assert body["expires_in"] > 0, body
    assert isinstance(body["access_token"], str), body
    assert isinstance(body["refresh_token"], str), body
    assert body["access_token"] != body["refresh_token"]
    assert "no-store" in response.headers.get("cache-control", ""), f"token response cache-control: {response.headers}"
    assert_no_password_hash(response)
    assert_user(body["user"])
    return Login(body["user"], body["access_token"], body["refresh_token"], body)


@dataclass
class Api:
    """The app under test, its client, and the first admin's session."""

    app: Litestar
    client: httpx.AsyncClient
    settings: Settings
    admin: Login | None = None

    @property
    def container(self) -> Any:
        return self.app.state.container

    async def bootstrap_admin(self) -> Login:
        created = await self.container.users.create_admin(ADMIN_USERNAME, ADMIN_EMAIL, ADMIN_PASSWORD)
        self.admin = await self.login(ADMIN_USERNAME, ADMIN_PASSWORD)
        assert self.admin.id == created.id
        assert self.admin.user["role"] == "admin"
        return self.admin

    @property
    def admin_headers(self) -> dict[str, str]:
        assert self.admin is not None
        return self.admin.headers

    password: str = PASSWORD

    async def register(
        self,
        username: str,
        *,
        password: str = PASSWORD,
        email: str | None = None,
        user_agent: str | None = None,
        **extra: Any,
    ) -> Login:
        """Register (which also opens the account's first session, with ``user_agent`` if given)."""
        response = await self.client.post(
            f"{V1}/auth/register",
            json={"username": username, "email": email or f"{username}@example.com", "password": password, **extra},
            headers={"User-Agent": user_agent} if user_agent else None,
        )
        return assert_token_response(response, 201)

    async def login_as_new(self, username: str, *, user_agent: str | None = None) -> Login:
        """A new account whose only session is the one registration opened."""
        return await self.register(username, user_agent=user_agent)

    async def login(self, who: str, password: str = PASSWORD, *, user_agent: str | None = None) -> Login:
        headers = {"User-Agent": user_agent} if user_agent else None
        response = await self.client.post(
            f"{V1}/auth/login", json={"username_or_email": who, "password": password}, headers=headers
        )
        return assert_token_response(response, 200)

    async def try_login(self, who: str, password: str = PASSWORD) -> httpx.Response:
        return await self.client.post(f"{V1}/auth/login", json={"username_or_email": who, "password": password})

    async def refresh(self, token: str) -> httpx.Response:
        return await self.client.post(f"{V1}/auth/refresh", json={"refresh_token": token})

    async def me(self, token: str) -> httpx.Response:
        return await self.client.get(f"{V1}/auth/me", headers=bearer(token))


@dataclass(frozen=True)
class Route:
    """One method of one route of the app, as its router knows it (so new routes are covered automatically)."""

    method: str
    template: str  # e.g. /api/v1/users/{user_id}
    takes_body: bool

    def path(self, **values: str) -> str:
        params = {name: values.get(name, "00000000-0000-4000-8000-000000000000") for name in _params(self.template)}
        return self.template.format(**params)


def _params(template: str) -> list[str]:
    return [part[1:-1] for part in template.split("/") if part.startswith("{") and part.endswith("}")]


def app_routes(app: Litestar) -> list[Route]:
    """Every HTTP method of every route the app serves (the docs pages and OPTIONS included)."""
    from litestar.routes import HTTPRoute

    found: list[Route] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            takes_body = "data" in handler.parsed_fn_signature.parameters
            found.extend(Route(method, route.path_format, takes_body) for method in sorted(handler.http_methods))
    return found


def json_routes(app: Litestar) -> list[Route]:
    """The routes that read a JSON body."""
    routes = [route for route in app_routes(app) if route.takes_body]
    assert routes, "no route takes a body: the route discovery is broken"
    return routes
