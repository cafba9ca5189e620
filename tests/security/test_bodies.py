"""Hostile request bodies against a live server: oversized bodies (1 MiB and more), bodies not sent as JSON,
and JSON nested deeper than any request needs, on every REST route that reads a body; oversized messages on
every gRPC method with a text field.

gRPC has no counterpart to two of these: its messages are protobuf, always ``application/grpc`` (there is no
content type to get wrong), and no Arcana request message nests another, so there is no nesting to abuse.
What gRPC does have is its 4 MiB message limit, enforced by grpc itself before a servicer runs.

Every REST body sent here is a valid request for its route in every other respect (a good login, a real
account to change), so a route that read it would act on it: only the attacked property makes it fail.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, users_pb2, users_pb2_grpc
from tests.contract.clients import NEW_PASSWORD, PASSWORD, fails, unique
from tests.security.live import ADMIN, ADMIN_PASSWORD, V1, Account, Live, connect, register

pytestmark = [pytest.mark.e2e, pytest.mark.req("SRS-110"), pytest.mark.timeout(120)]

MAX_BODY = 64 * 1024
MIB = 1024 * 1024
GRPC_LIMIT = 4 * MIB
A_TOKEN_OF_NOBODY = "pUq3b0n5mWc8xZr2Lk7Ye4Ta9Vd6Hs1Gf0Jn8Qw3Ex2"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {id} is the bystander's id
    who: str  # whose token it carries: "admin", "bystander" or "" (none)
    body: Callable[[Live], dict[str, Any]]  # a valid body: the route would act on it


BODY_ROUTES = {
    "auth.register": Route(
        "POST", "/auth/register", "", lambda live: {"username": unique("b"), "email": "", "password": PASSWORD}
    ),
    "auth.login": Route(
        "POST", "/auth/login", "", lambda live: {"username_or_email": ADMIN, "password": ADMIN_PASSWORD}
    ),
    "auth.refresh": Route("POST", "/auth/refresh", "", lambda live: {"refresh_token": A_TOKEN_OF_NOBODY}),
    "auth.validate_token": Route("POST", "/auth/validate", "", lambda live: {"access_token": live.admin_access}),
    "auth.revoke_all_sessions": Route(
        "POST", "/auth/sessions/revoke-all", "bystander", lambda live: {"keep_current": True}
    ),
    "auth.forgot_password": Route("POST", "/auth/password/forgot", "", lambda live: {"email": "root@example.com"}),
    "auth.reset_password": Route(
        "POST", "/auth/password/reset", "", lambda live: {"token": A_TOKEN_OF_NOBODY, "new_password": NEW_PASSWORD}
    ),
    "auth.resend_verification": Route("POST", "/auth/email/resend", "", lambda live: {"email": "root@example.com"}),
    "auth.verify_email": Route("POST", "/auth/email/verify", "", lambda live: {"token": A_TOKEN_OF_NOBODY}),
    "users.create": Route(
        "POST", "/users", "admin", lambda live: {"username": unique("b"), "email": "", "password": PASSWORD}
    ),
    "users.update": Route("PATCH", "/users/{id}", "admin", lambda live: {"first_name": "Mallory"}),
    "users.change_password": Route(
        "PUT",
        "/users/{id}/password",
        "bystander",
        lambda live: {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    ),
    "users.set_role": Route("PUT", "/users/{id}/role", "admin", lambda live: {"role": "admin"}),
    "users.set_status": Route("PUT", "/users/{id}/status", "admin", lambda live: {"status": "suspended"}),
}


@pytest.fixture(scope="package")
def bystander(hs256: Live) -> Account:
    """The account the routes under /users/{id} would act on, and whose token the self-service routes carry."""
    return register(hs256, unique("bystander"))


@pytest.fixture
async def http(hs256: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=hs256.http + V1, timeout=30) as client:
        yield client


def valid_body(live: Live, operation: str) -> dict[str, Any]:
    body = BODY_ROUTES[operation].body(live)
    if body.get("email") == "":
        body["email"] = f"{body['username']}@example.com"
    return body


async def send(
    http: httpx.AsyncClient,
    live: Live,
    bystander: Account,
    operation: str,
    content: bytes | AsyncIterator[bytes],
    content_type: str | None = "application/json",
) -> httpx.Response:
    route = BODY_ROUTES[operation]
    headers = {"content-type": content_type} if content_type else {}
    token = {"admin": live.admin_access, "bystander": bystander.access}.get(route.who)
    if token:
        headers["authorization"] = f"Bearer {token}"
    return await http.request(route.method, route.path.format(id=bystander.id), content=content, headers=headers)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one answer: ``status`` as a problem document with domain ``code``, and nothing the route makes."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    assert set(body) <= {"type", "title", "status", "detail", "code", "errors"}, body
    return body


def named(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors") or ()}


def test_every_rest_route_that_reads_a_body_is_attacked(hs256: Live) -> None:
    """The routes above are exactly those the live OpenAPI document gives a request body."""
    document = httpx.get(f"{hs256.http}/schema/openapi.json", timeout=10).json()
    with_body = {
        operation["operationId"]: (method.upper(), path.removeprefix(V1).replace("{user_id}", "{id}"))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "requestBody" in operation
    }
    assert with_body == {operation: (route.method, route.path) for operation, route in BODY_ROUTES.items()}


# --- oversized bodies ---------------------------------------------------------------------------------------------


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON of exactly ``size`` bytes: trailing whitespace, which JSON allows, so still a valid body."""
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


async def chunked(data: bytes) -> AsyncIterator[bytes]:
    """The body as a stream (Transfer-Encoding: chunked, no Content-Length for the server to check first)."""
    for start in range(0, len(data), 16 * 1024):
        yield data[start : start + 16 * 1024]


OVERSIZED = {
    "1 MiB with Content-Length": (MIB, False),
    "1 MiB chunked, no Content-Length": (MIB, True),
    "64 KiB and 1 byte": (MAX_BODY + 1, False),
    "64 KiB and 1 byte, chunked": (MAX_BODY + 1, True),
}


@pytest.mark.parametrize("operation", list(BODY_ROUTES))
@pytest.mark.parametrize("size", list(OVERSIZED))
async def test_an_oversized_body_is_413(
    hs256: Live, bystander: Account, http: httpx.AsyncClient, operation: str, size: str
) -> None:
    length, stream = OVERSIZED[size]
    data = padded(valid_body(hs256, operation), length)
    response = await send(http, hs256, bystander, operation, chunked(data) if stream else data)
    problem(response, 413, "payload_too_large")


async def test_a_body_of_exactly_64_kib_is_read(hs256: Live, bystander: Account, http: httpx.AsyncClient) -> None:
    """The limit is where the README puts it: the same login, one byte shorter than the 413 above, logs in."""
    response = await send(http, hs256, bystander, "auth.login", padded(valid_body(hs256, "auth.login"), MAX_BODY))
    assert response.status_code == 200, response.text
    assert response.json()["user"]["username"] == ADMIN


# --- bodies not sent as JSON --------------------------------------------------------------------------------------

NOT_JSON = {
    "text/plain": "text/plain",
    "text/plain with charset": "text/plain;charset=UTF-8",
    "a form": "application/x-www-form-urlencoded",
    "a multipart form": "multipart/form-data; boundary=attack",
    "XML": "application/xml",
    "text/json": "text/json",
    "no content type": None,
}


@pytest.mark.parametrize("operation", list(BODY_ROUTES))
@pytest.mark.parametrize("content_type", list(NOT_JSON))
async def test_a_body_not_sent_as_json_is_415(
    hs256: Live, bystander: Account, http: httpx.AsyncClient, operation: str, content_type: str
) -> None:
    """A browser posts text/plain and forms cross-site without a preflight: a valid JSON body in one is not read."""
    raw = json.dumps(valid_body(hs256, operation)).encode()
    response = await send(http, hs256, bystander, operation, raw, NOT_JSON[content_type])
    problem(response, 415, "unsupported_media_type")


# --- deeply nested JSON -------------------------------------------------------------------------------------------


def nested(kind: str, body: dict[str, Any]) -> bytes:
    first = next(iter(body))
    if kind == "arrays nested 20,000 deep":
        return b"[" * 20_000 + b"]" * 20_000
    if kind == "objects nested 10,000 deep":
        return b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    if kind == "a field nested 20,000 deep":
        return b'{"%s": ' % first.encode() + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert kind == "a field nested 100 deep", kind
    return b'{"%s": ' % first.encode() + b"[" * 100 + b"]" * 100 + b"}"


@pytest.mark.parametrize("operation", list(BODY_ROUTES))
@pytest.mark.parametrize(
    "kind", ["arrays nested 20,000 deep", "objects nested 10,000 deep", "a field nested 20,000 deep"]
)
async def test_json_nested_beyond_the_decoders_limit_is_400_naming_body(
    hs256: Live, bystander: Account, http: httpx.AsyncClient, operation: str, kind: str
) -> None:
    raw = nested(kind, valid_body(hs256, operation))
    assert len(raw) < MAX_BODY  # the nesting, not the size, is what is refused
    body = problem(await send(http, hs256, bystander, operation, raw), 400, "invalid_input")
    assert named(body) == {"body"}, body
    assert body["errors"][0]["message"] == "is nested too deeply", body


@pytest.mark.parametrize("operation", list(BODY_ROUTES))
async def test_a_field_nested_within_the_decoders_limit_is_400_naming_the_field(
    hs256: Live, bystander: Account, http: httpx.AsyncClient, operation: str
) -> None:
    valid = valid_body(hs256, operation)
    raw = nested("a field nested 100 deep", valid)
    body = problem(await send(http, hs256, bystander, operation, raw), 400, "invalid_input")
    assert named(body) == {next(iter(valid))}, body


# --- oversized gRPC messages --------------------------------------------------------------------------------------

Stubs = tuple[auth_pb2_grpc.AuthServiceStub, users_pb2_grpc.UserServiceStub]
RPCS: dict[str, tuple[Callable[[Stubs], Any], Callable[[str], Message]]] = {
    "Register": (lambda s: s[0].Register, lambda v: auth_pb2.RegisterRequest(username=v, password=PASSWORD)),
    "Login": (lambda s: s[0].Login, lambda v: auth_pb2.LoginRequest(username_or_email=v, password=PASSWORD)),
    "Refresh": (lambda s: s[0].Refresh, lambda v: auth_pb2.RefreshRequest(refresh_token=v)),
    "ValidateToken": (lambda s: s[0].ValidateToken, lambda v: auth_pb2.ValidateTokenRequest(access_token=v)),
    "RevokeSession": (lambda s: s[0].RevokeSession, lambda v: auth_pb2.RevokeSessionRequest(id=v)),
    "ForgotPassword": (lambda s: s[0].ForgotPassword, lambda v: auth_pb2.ForgotPasswordRequest(email=v)),
    "ResetPassword": (lambda s: s[0].ResetPassword, lambda v: auth_pb2.ResetPasswordRequest(token=v)),
    "ResendVerification": (lambda s: s[0].ResendVerification, lambda v: auth_pb2.ResendVerificationRequest(email=v)),
    "VerifyEmail": (lambda s: s[0].VerifyEmail, lambda v: auth_pb2.VerifyEmailRequest(token=v)),
    "GetUser": (lambda s: s[1].GetUser, lambda v: users_pb2.GetUserRequest(id=v)),
    "ListUsers": (lambda s: s[1].ListUsers, lambda v: users_pb2.ListUsersRequest(q=v)),
    "CreateUser": (lambda s: s[1].CreateUser, lambda v: users_pb2.CreateUserRequest(username=v, password=PASSWORD)),
    "UpdateUser": (lambda s: s[1].UpdateUser, lambda v: users_pb2.UpdateUserRequest(first_name=v)),
    "DeleteUser": (lambda s: s[1].DeleteUser, lambda v: users_pb2.DeleteUserRequest(id=v)),
    "ChangePassword": (lambda s: s[1].ChangePassword, lambda v: users_pb2.ChangePasswordRequest(new_password=v)),
    "SetStatus": (lambda s: s[1].SetStatus, lambda v: users_pb2.SetStatusRequest(status=v)),
    "SetRole": (lambda s: s[1].SetRole, lambda v: users_pb2.SetRoleRequest(role=v)),
    "VerifyUser": (lambda s: s[1].VerifyUser, lambda v: users_pb2.VerifyUserRequest(id=v)),
}


@pytest.mark.parametrize("rpc", list(RPCS))
async def test_a_grpc_message_over_4_mib_is_resource_exhausted(hs256: Live, rpc: str) -> None:
    method, request = RPCS[rpc]
    message = request("x" * GRPC_LIMIT)
    assert message.ByteSize() > GRPC_LIMIT
    metadata = (("authorization", f"Bearer {hs256.admin_access}"),)
    async with grpc.aio.insecure_channel(hs256.grpc) as channel:
        stubs = (auth_pb2_grpc.AuthServiceStub(channel), users_pb2_grpc.UserServiceStub(channel))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await method(stubs)(message, metadata=metadata, timeout=30)
        # grpc refuses it before any servicer runs, so there is no ErrorInfo: the code and grpc's words.
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value
        assert "larger than max" in (caught.value.details() or ""), caught.value.details()
        # The same channel still serves: the oversized call cost the server nothing lasting.
        tokens = await stubs[0].Login(auth_pb2.LoginRequest(username_or_email=ADMIN, password=ADMIN_PASSWORD))
        assert tokens.user.username == ADMIN


async def test_a_grpc_message_just_under_4_mib_is_read_and_its_field_refused(hs256: Live) -> None:
    """The limit is grpc's 4 MiB: a message a little smaller reaches the service, which names the field."""
    async with connect("grpc", hs256) as client:
        outcome = await client.login("x" * (GRPC_LIMIT - 1024), PASSWORD)
    assert fails(outcome, "invalid", "username_or_email").fields == {"username_or_email"}
