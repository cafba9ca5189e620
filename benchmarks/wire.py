"""The operations on the wire: one definition per operation gives its REST request and its gRPC request.

Both protocols carry the same fields (the proto messages and the JSON bodies use the same names), the
same credentials and the same data, so each pair does the same work in the service. Bodies that must
differ per request (a new username for ``create``, a fresh refresh token for ``refresh``) are made in
bulk here, as length-prefixed messages for varied-load (gRPC frames, or JSON bodies) and JSON lines
for wrk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from py_app._proto.arcana.v1 import auth_pb2, users_pb2

PASSWORD = "Bench!Passw0rd-2026"  # every seeded account's password (one precomputed argon2id hash)


@dataclass(frozen=True)
class Accounts:
    """What the seeder made and the callers need: ids, tokens, and the login name."""

    user_id: str
    user_token: str
    admin_token: str
    login_name: str


@dataclass(frozen=True)
class Call:
    op: str
    rest_method: str
    rest_path: str  # may name {user_id}
    grpc_method: str
    grpc_request: type[Message]
    auth: str | None  # "user", "admin" or None
    varied: bool  # a distinct body per request
    fields: Callable[[Accounts], dict[str, Any]]  # the body of a fixed-body call

    def path(self, accounts: Accounts) -> str:
        return self.rest_path.format(user_id=accounts.user_id)

    def token(self, accounts: Accounts) -> str | None:
        return {"user": accounts.user_token, "admin": accounts.admin_token, None: None}[self.auth]


def _none(_: Accounts) -> dict[str, Any]:
    return {}


CALLS: dict[str, Call] = {
    call.op: call
    for call in (
        Call(
            "point_query",
            "GET",
            "/api/v1/users/{user_id}",
            "/arcana.v1.UserService/GetUser",
            users_pb2.GetUserRequest,
            "user",
            False,
            lambda a: {"id": a.user_id},
        ),
        Call("me", "GET", "/api/v1/auth/me", "/arcana.v1.AuthService/Me", auth_pb2.MeRequest, "user", False, _none),
        Call(
            "list",
            "GET",
            "/api/v1/users?page=1&per_page=20",
            "/arcana.v1.UserService/ListUsers",
            users_pb2.ListUsersRequest,
            "admin",
            False,
            lambda a: {"page": 1, "per_page": 20},
        ),
        Call(
            "validate",
            "POST",
            "/api/v1/auth/validate",
            "/arcana.v1.AuthService/ValidateToken",
            auth_pb2.ValidateTokenRequest,
            None,
            False,
            lambda a: {"access_token": a.user_token},
        ),
        Call(
            "login",
            "POST",
            "/api/v1/auth/login",
            "/arcana.v1.AuthService/Login",
            auth_pb2.LoginRequest,
            None,
            False,
            lambda a: {"username_or_email": a.login_name, "password": PASSWORD},
        ),
        Call(
            "refresh",
            "POST",
            "/api/v1/auth/refresh",
            "/arcana.v1.AuthService/Refresh",
            auth_pb2.RefreshRequest,
            None,
            True,
            _none,
        ),
        Call(
            "create",
            "POST",
            "/api/v1/users",
            "/arcana.v1.UserService/CreateUser",
            users_pb2.CreateUserRequest,
            "admin",
            True,
            _none,
        ),
    )
}


def new_user_fields(tag: str, index: int) -> dict[str, Any]:
    """A unique account per request; ``tag`` keeps points apart (usernames are 3 to 32 characters)."""
    name = f"{tag}{index:x}"
    return {
        "username": name,
        "email": f"{name}@bench.example",
        "password": PASSWORD,
        "first_name": "Bench",
        "last_name": "Created",
        "role": "user",
    }


def refresh_fields(token: str) -> dict[str, Any]:
    return {"refresh_token": token}


def rest_body(fields: dict[str, Any]) -> bytes | None:
    return json.dumps(fields, separators=(",", ":")).encode() if fields else None


def grpc_frame(call: Call, fields: dict[str, Any]) -> bytes:
    """One uncompressed gRPC message: flag byte 0, 4-byte big-endian length, the protobuf bytes."""
    message = call.grpc_request(**fields).SerializeToString()
    return b"\x00" + len(message).to_bytes(4, "big") + message


def grpc_message(call: Call, fields: dict[str, Any]) -> Message:
    return call.grpc_request(**fields)


def headers(call: Call, accounts: Accounts, protocol: str) -> list[tuple[str, str]]:
    """Request headers (gRPC: metadata) beyond what each client sets itself."""
    out = []
    token = call.token(accounts)
    if token:
        out.append(("authorization", f"Bearer {token}"))
    if protocol == "rest" and call.rest_method == "POST":
        out.append(("content-type", "application/json"))
    return out


def write_rest_bodies(path: Any, bodies: Sequence[dict[str, Any]]) -> None:
    """JSON lines for bodies.lua (one request each)."""
    with open(path, "w", encoding="utf-8") as handle:
        for fields in bodies:
            handle.write(json.dumps(fields, separators=(",", ":")) + "\n")


def write_frames(path: Any, call: Call, bodies: Sequence[dict[str, Any]], protocol: str) -> None:
    """varied-load's input: gRPC messages, or JSON bodies under the same 5-byte length prefix (REST)."""
    with open(path, "wb") as handle:
        for fields in bodies:
            if protocol == "grpc":
                handle.write(grpc_frame(call, fields))
            else:
                body = json.dumps(fields, separators=(",", ":")).encode()
                handle.write(b"\x00" + len(body).to_bytes(4, "big") + body)
