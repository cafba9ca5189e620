"""Two clients of the live server with one interface: every call answers a normalised ``Outcome``.

The REST client speaks JSON over httpx; the gRPC client speaks the ``arcana.v1`` protos over ``grpc.aio``.
Both turn their answers into the same shapes, so a test asserts one outcome and runs over either protocol:

* ``kind``: ok | invalid | unauthenticated | forbidden | not_found | conflict | rate_limited. Any other
  status (a 5xx, gRPC UNKNOWN / INTERNAL / UNIMPLEMENTED ...) fails the test at once, with the details.
* ``body``: the REST JSON shape (users, token responses, pages, sessions), with every timestamp a UTC
  ``datetime`` (an unset proto Timestamp is ``None``, as REST's ``null``); ``None`` for empty answers.
* ``fields``: the bad input fields named by the error (REST problem ``errors[].field``, gRPC
  ``google.rpc.BadRequest.field_violations[].field``), reduced to their last dotted component.
* ``code``: the domain error code (REST problem ``code``; gRPC ``google.rpc.ErrorInfo.reason``).

Nothing here imports the server's implementation: only the generated proto modules, which are the contract.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from py_app._proto.arcana.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    users_pb2,
    users_pb2_grpc,
)
from tests.contract.transcript import volatile

V1 = "/api/v1"
KINDS = frozenset({"ok", "invalid", "unauthenticated", "forbidden", "not_found", "conflict", "rate_limited"})
ERROR_CODE_BY_KIND = {
    "invalid": "invalid_input",
    "unauthenticated": "unauthenticated",
    "forbidden": "permission_denied",
    "not_found": "not_found",
    "conflict": "conflict",
    "rate_limited": "rate_limited",
}
USER_FIELDS = (
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
)
USER_TIMES = ("created_at", "updated_at", "last_login_at")
SESSION_TIMES = ("created_at", "last_used_at")
TIMEOUT = 15.0

KIND_BY_HTTP = {
    200: "ok",
    201: "ok",
    202: "ok",
    204: "ok",
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    429: "rate_limited",
}
KIND_BY_GRPC = {
    grpc.StatusCode.OK: "ok",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid",
    grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
    grpc.StatusCode.PERMISSION_DENIED: "forbidden",
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.ALREADY_EXISTS: "conflict",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "rate_limited",
}


@dataclass(frozen=True)
class Outcome:
    """One answer, in protocol-neutral terms."""

    kind: str
    body: Any = None
    fields: frozenset[str] = frozenset()
    code: str | None = None
    message: str = field(default="", compare=False)  # the human-readable error text (problem detail / status details)
    raw: str = field(default="", compare=False, repr=False)  # what the wire said, for assertion messages

    def __str__(self) -> str:
        return f"{self.kind} code={self.code} fields={sorted(self.fields)} body={self.body!r:.300} | {self.raw[:600]}"


# --- assertions on outcomes ------------------------------------------------------------------------------------


def ok(outcome: Outcome) -> Any:
    """The call succeeded: return its normalised body."""
    assert outcome.kind == "ok", f"expected ok, got {outcome}"
    return outcome.body


def fails(outcome: Outcome, kind: str, *fields: str) -> Outcome:
    """The call failed with ``kind`` and the matching domain code; ``fields`` are all named."""
    assert kind in KINDS, kind
    assert outcome.kind == kind, f"expected {kind}, got {outcome}"
    assert outcome.code == ERROR_CODE_BY_KIND[kind], f"domain code should be {ERROR_CODE_BY_KIND[kind]}: {outcome}"
    assert outcome.message, f"error without a human-readable message: {outcome}"
    missing = set(fields) - outcome.fields
    assert not missing, f"errors do not name {sorted(missing)}: {outcome}"
    return outcome


def assert_user(user: Any, **expected: Any) -> dict[str, Any]:
    """The normalised public user: every contract field, UTC datetimes, never a password."""
    assert isinstance(user, dict), user
    assert set(user) == set(USER_FIELDS), f"fields differ: {set(user) ^ set(USER_FIELDS)}"
    assert str(uuid.UUID(user["id"])) == user["id"], user["id"]
    assert user["role"] in {"admin", "user", "guest"}, user
    assert user["status"] in {"active", "inactive", "suspended"}, user
    assert isinstance(user["is_verified"], bool), user
    for name in USER_TIMES:
        value = user[name]
        if name == "last_login_at" and value is None:
            continue
        assert isinstance(value, datetime), f"{name}: {value!r}"
        assert value.utcoffset() == timedelta(0), f"{name} not UTC: {value!r}"
    for key, value in expected.items():
        assert user[key] == value, f"{key}: {user[key]!r} != {value!r}"
    return user


def same_instant(left: datetime | None, right: datetime | None, tolerance: float = 0.001) -> bool:
    """Equal timestamps, allowing for one protocol carrying finer precision than the other."""
    if left is None or right is None:
        return left is right
    return abs((left - right).total_seconds()) <= tolerance


def assert_same_user(left: dict[str, Any], right: dict[str, Any]) -> None:
    """The same user record, as two protocols (or two calls) present it."""
    for name in USER_FIELDS:
        if name in USER_TIMES:
            assert same_instant(left[name], right[name]), f"{name}: {left[name]!r} != {right[name]!r}"
        else:
            assert left[name] == right[name], f"{name}: {left[name]!r} != {right[name]!r}"


# --- the common interface --------------------------------------------------------------------------------------


@dataclass
class Tokens:
    """A session opened by register or login: its tokens and the user as returned."""

    access: str
    refresh: str
    user: dict[str, Any]
    body: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.user["id"])


def tokens(outcome: Outcome) -> Tokens:
    """Assert a token response and return it."""
    body = ok(outcome)
    assert isinstance(body, dict), body
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}, body
    assert body["token_type"] == "Bearer", body
    assert isinstance(body["expires_in"], int), body
    assert body["expires_in"] > 0, body
    assert isinstance(body["access_token"], str), body
    assert body["access_token"], body
    assert isinstance(body["refresh_token"], str), body
    assert body["refresh_token"], body
    assert body["access_token"] != body["refresh_token"], body
    assert_user(body["user"])
    return Tokens(body["access_token"], body["refresh_token"], body["user"], body)


class Client(Protocol):
    protocol: str

    async def register(
        self,
        username: str,
        email: str,
        password: str,
        first_name: str = "",
        last_name: str = "",
        *,
        user_agent: str | None = None,
    ) -> Outcome: ...
    async def login(self, who: str, password: str, *, user_agent: str | None = None) -> Outcome: ...
    async def refresh(self, refresh_token: str) -> Outcome: ...
    async def validate(self, access_token: str) -> Outcome: ...
    async def forgot_password(self, email: str) -> Outcome: ...
    async def reset_password(self, token: str, new_password: str) -> Outcome: ...
    async def resend_verification(self, email: str) -> Outcome: ...
    async def verify_email(self, token: str) -> Outcome: ...
    async def list_audit(
        self, token: str | None, *, user_id: str | None = None, event: str | None = None
    ) -> Outcome: ...
    async def logout(self, token: str | None) -> Outcome: ...
    async def me(self, token: str | None) -> Outcome: ...
    async def me_with_authorization(self, authorization: str) -> Outcome: ...
    async def sessions(self, token: str | None) -> Outcome: ...
    async def revoke_session(self, token: str | None, session_id: str) -> Outcome: ...
    async def revoke_all(self, token: str | None, *, keep_current: bool = False) -> Outcome: ...
    async def get_user(self, token: str | None, user_id: str) -> Outcome: ...
    async def list_users(
        self,
        token: str | None,
        *,
        page: int | None = None,
        per_page: int | None = None,
        role: str | None = None,
        status: str | None = None,
        q: str | None = None,
    ) -> Outcome: ...
    async def create_user(
        self,
        token: str | None,
        username: str,
        email: str,
        password: str,
        first_name: str = "",
        last_name: str = "",
        role: str | None = None,
    ) -> Outcome: ...
    async def update_user(self, token: str | None, user_id: str, **changes: str) -> Outcome: ...
    async def delete_user(self, token: str | None, user_id: str) -> Outcome: ...
    async def change_password(self, token: str | None, user_id: str, current: str, new: str) -> Outcome: ...
    async def set_status(self, token: str | None, user_id: str, status: str) -> Outcome: ...
    async def set_role(self, token: str | None, user_id: str, role: str) -> Outcome: ...
    async def verify(self, token: str | None, user_id: str) -> Outcome: ...
    async def aclose(self) -> None: ...


# --- REST ------------------------------------------------------------------------------------------------------


def _rfc3339(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    assert isinstance(value, str), f"{name}: {value!r}"
    assert "T" in value, f"{name}: {value!r}"
    assert value.endswith(("Z", "+00:00")), f"{name} not UTC RFC 3339: {value!r}"
    return datetime.fromisoformat(value)


def _rest_user(user: Any) -> dict[str, Any]:
    assert isinstance(user, dict), user
    assert not any("password" in key for key in user), user
    normalised = {name: user.get(name, "<missing>") for name in USER_FIELDS}
    for name in USER_TIMES:
        normalised[name] = _rfc3339(user.get(name), name)
    return normalised


def _rest_body(body: Any) -> Any:
    """REST JSON into the normalised shape: users and sessions get datetimes."""
    if not isinstance(body, dict):
        return body
    if "access_token" in body:
        return {**body, "user": _rest_user(body.get("user"))}
    if "username" in body:
        return _rest_user(body)
    if "total_pages" in body and body["items"] and "event" in body["items"][0]:
        return {**body, "items": [{**item, "at": _rfc3339(item["at"], "at")} for item in body["items"]]}
    if "total_pages" in body:
        return {**body, "items": [_rest_user(user) for user in body["items"]]}
    if "items" in body:
        return {
            "items": [
                {**item, **{name: _rfc3339(item.get(name), name) for name in SESSION_TIMES}} for item in body["items"]
            ]
        }
    return body


class RestClient:
    protocol = "rest"

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        response = await self.http.request(
            method,
            V1 + path,
            json=json,
            params={k: v for k, v in (params or {}).items() if v is not None},
            headers=sent,
        )
        return self._outcome(response)

    @staticmethod
    def _outcome(response: httpx.Response) -> Outcome:
        raw = f"REST {response.request.method} {response.request.url.path} -> {response.status_code}: {response.text}"
        kind = KIND_BY_HTTP.get(response.status_code)
        if kind is None:
            pytest.fail(f"unexpected HTTP status: {raw[:2000]}")
        if kind == "ok":
            assert "password_hash" not in response.text, raw
            assert "$argon2" not in response.text, raw
            if response.status_code == 204 or not response.content:
                return Outcome("ok", None, raw=raw)
            return Outcome("ok", _rest_body(response.json()), raw=raw)
        assert response.headers.get("content-type", "").startswith("application/problem+json"), raw
        problem = response.json()
        assert problem.get("status") == response.status_code, raw
        if response.status_code == 401:
            assert response.headers.get("www-authenticate", "").startswith("Bearer"), raw
        fields = frozenset(str(error["field"]).rsplit(".", 1)[-1] for error in problem.get("errors") or ())
        return Outcome(kind, None, fields, problem.get("code"), str(problem.get("detail", "")), raw)

    async def register(
        self,
        username: str,
        email: str,
        password: str,
        first_name: str = "",
        last_name: str = "",
        *,
        user_agent: str | None = None,
    ) -> Outcome:
        body = {"username": username, "email": email, "password": password}
        if first_name:
            body["first_name"] = first_name
        if last_name:
            body["last_name"] = last_name
        headers = {"User-Agent": user_agent} if user_agent else None
        outcome = await self._call("POST", "/auth/register", json=body, headers=headers)
        if outcome.kind == "ok":  # the one status difference: REST says 201 Created
            assert " -> 201:" in outcome.raw, outcome.raw
        return outcome

    async def login(self, who: str, password: str, *, user_agent: str | None = None) -> Outcome:
        headers = {"User-Agent": user_agent} if user_agent else None
        return await self._call(
            "POST", "/auth/login", json={"username_or_email": who, "password": password}, headers=headers
        )

    async def refresh(self, refresh_token: str) -> Outcome:
        return await self._call("POST", "/auth/refresh", json={"refresh_token": refresh_token})

    async def validate(self, access_token: str) -> Outcome:
        return await self._call("POST", "/auth/validate", json={"access_token": access_token})

    async def forgot_password(self, email: str) -> Outcome:
        return await self._call("POST", "/auth/password/forgot", json={"email": email})

    async def reset_password(self, token: str, new_password: str) -> Outcome:
        return await self._call("POST", "/auth/password/reset", json={"token": token, "new_password": new_password})

    async def resend_verification(self, email: str) -> Outcome:
        return await self._call("POST", "/auth/email/resend", json={"email": email})

    async def verify_email(self, token: str) -> Outcome:
        return await self._call("POST", "/auth/email/verify", json={"token": token})

    async def list_audit(self, token: str | None, *, user_id: str | None = None, event: str | None = None) -> Outcome:
        query = {name: value for name, value in (("user_id", user_id), ("event", event)) if value is not None}
        return await self._call("GET", "/audit", token, params=query)

    async def logout(self, token: str | None) -> Outcome:
        return await self._call("POST", "/auth/logout", token)

    async def me(self, token: str | None) -> Outcome:
        return await self._call("GET", "/auth/me", token)

    async def me_with_authorization(self, authorization: str) -> Outcome:
        return await self._call("GET", "/auth/me", headers={"Authorization": authorization})

    async def sessions(self, token: str | None) -> Outcome:
        return await self._call("GET", "/auth/sessions", token)

    async def revoke_session(self, token: str | None, session_id: str) -> Outcome:
        return await self._call("DELETE", f"/auth/sessions/{session_id}", token)

    async def revoke_all(self, token: str | None, *, keep_current: bool = False) -> Outcome:
        return await self._call("POST", "/auth/sessions/revoke-all", token, json={"keep_current": keep_current})

    async def get_user(self, token: str | None, user_id: str) -> Outcome:
        return await self._call("GET", f"/users/{user_id}", token)

    async def list_users(
        self,
        token: str | None,
        *,
        page: int | None = None,
        per_page: int | None = None,
        role: str | None = None,
        status: str | None = None,
        q: str | None = None,
    ) -> Outcome:
        params = {"page": page, "per_page": per_page, "role": role, "status": status, "q": q}
        return await self._call("GET", "/users", token, params=params)

    async def create_user(
        self,
        token: str | None,
        username: str,
        email: str,
        password: str,
        first_name: str = "",
        last_name: str = "",
        role: str | None = None,
    ) -> Outcome:
        body: dict[str, Any] = {"username": username, "email": email, "password": password}
        if first_name:
            body["first_name"] = first_name
        if last_name:
            body["last_name"] = last_name
        if role is not None:
            body["role"] = role
        return await self._call("POST", "/users", token, json=body)

    async def update_user(self, token: str | None, user_id: str, **changes: str) -> Outcome:
        return await self._call("PATCH", f"/users/{user_id}", token, json=changes)

    async def delete_user(self, token: str | None, user_id: str) -> Outcome:
        return await self._call("DELETE", f"/users/{user_id}", token)

    async def change_password(self, token: str | None, user_id: str, current: str, new: str) -> Outcome:
        body = {"current_password": current, "new_password": new}
        return await self._call("PUT", f"/users/{user_id}/password", token, json=body)

    async def set_status(self, token: str | None, user_id: str, status: str) -> Outcome:
        return await self._call("PUT", f"/users/{user_id}/status", token, json={"status": status})

    async def set_role(self, token: str | None, user_id: str, role: str) -> Outcome:
        return await self._call("PUT", f"/users/{user_id}/role", token, json={"role": role})

    async def verify(self, token: str | None, user_id: str) -> Outcome:
        return await self._call("POST", f"/users/{user_id}/verify", token)


# --- gRPC ------------------------------------------------------------------------------------------------------


def _time(message: Message, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    moment: datetime = getattr(message, name).ToDatetime(tzinfo=UTC)
    return moment


def grpc_user(user: common_pb2.User) -> dict[str, Any]:
    normalised: dict[str, Any] = {name: getattr(user, name) for name in USER_FIELDS if name not in USER_TIMES}
    for name in USER_TIMES:
        normalised[name] = _time(user, name)
    return normalised


def _audit_event(event: audit_pb2.AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _time(event, "at"),
        "event": event.event,
        "actor_id": event.actor_id or None,  # proto3 has no null: an empty id is REST's null
        "target_id": event.target_id or None,
        "ip": event.ip,
        "details": json_format.MessageToDict(event.details),
    }


def _grpc_body(message: Message) -> Any:
    """A response message into the REST JSON shape."""
    if isinstance(message, common_pb2.User):
        return grpc_user(message)
    if isinstance(message, common_pb2.TokenResponse):
        assert message.HasField("user"), "TokenResponse without a user"
        return {
            "access_token": message.access_token,
            "refresh_token": message.refresh_token,
            "token_type": message.token_type,
            "expires_in": message.expires_in,
            "user": grpc_user(message.user),
        }
    if isinstance(message, users_pb2.ListUsersResponse):
        return {
            "items": [grpc_user(user) for user in message.items],
            "page": message.page,
            "per_page": message.per_page,
            "total": message.total,
            "total_pages": message.total_pages,
        }
    if isinstance(message, auth_pb2.ListSessionsResponse):
        return {
            "items": [
                {
                    "id": item.id,
                    "created_at": _time(item, "created_at"),
                    "last_used_at": _time(item, "last_used_at"),
                    "user_agent": item.user_agent,
                    "ip": item.ip,
                    "current": item.current,
                }
                for item in message.items
            ]
        }
    if isinstance(message, auth_pb2.RevokeAllSessionsResponse):
        return {"revoked": message.revoked}
    if isinstance(message, auth_pb2.ValidateTokenResponse):
        return {"user_id": message.user_id, "session_id": message.session_id, "role": message.role}
    if isinstance(message, auth_pb2.AcceptedResponse):
        return {"status": message.status, "detail": message.detail}
    if isinstance(message, audit_pb2.ListEventsResponse):
        return {
            "items": [_audit_event(event) for event in message.items],
            "page": message.page,
            "per_page": message.per_page,
            "total": message.total,
            "total_pages": message.total_pages,
        }
    # The empty responses (Logout, RevokeSession, DeleteUser, ChangePassword) are REST's 204.
    assert message.ByteSize() == 0, f"unexpected non-empty {type(message).__name__}: {message}"
    return None


def grpc_error_outcome(error: grpc.aio.AioRpcError, what: str) -> Outcome:
    """Map a failed call: status code to kind, BadRequest to fields, ErrorInfo to code. UNKNOWN etc. fail."""
    raw = f"gRPC {what} -> {error.code().name}: {error.details()!r}"
    kind = KIND_BY_GRPC.get(error.code())
    if kind is None or kind == "ok":
        pytest.fail(f"unexpected gRPC status (the contract allows only mapped domain codes): {raw}")
    try:
        status = rpc_status.from_call(error)
    except ValueError as exc:  # the rich status disagrees with the call's code or message
        pytest.fail(f"inconsistent grpc-status-details-bin: {exc}; {raw}")
    assert status is not None, f"error without google.rpc.Status details (no ErrorInfo): {raw}"
    fields: set[str] = set()
    reasons: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            for violation in bad_request.field_violations:
                assert violation.field, f"BadRequest violation without a field: {raw}"
                assert violation.description, f"BadRequest violation without a description: {raw}"
                fields.add(violation.field.rsplit(".", 1)[-1])
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reasons.append(info.reason)
    assert len(reasons) == 1, f"expected exactly one ErrorInfo detail, found {reasons}: {raw}"
    return Outcome(kind, None, frozenset(fields), reasons[0], error.details() or "", raw + f" details={status.details}")


class GrpcClient:
    protocol = "grpc"

    def __init__(self, target: str) -> None:
        self.target = target
        self._channels: dict[str | None, grpc.aio.Channel] = {}

    def _channel(self, user_agent: str | None) -> grpc.aio.Channel:
        """One channel per User-Agent: gRPC sets it per channel (``grpc.primary_user_agent``)."""
        if user_agent not in self._channels:
            options = [("grpc.primary_user_agent", user_agent)] if user_agent else []
            self._channels[user_agent] = grpc.aio.insecure_channel(self.target, options=options)
        return self._channels[user_agent]

    def auth(self, user_agent: str | None = None) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self._channel(user_agent))

    def users(self) -> users_pb2_grpc.UserServiceStub:
        return users_pb2_grpc.UserServiceStub(self._channel(None))

    async def aclose(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def _call(
        self, method: Any, request: Message, token: str | None = None, *, authorization: str | None = None
    ) -> Outcome:
        if authorization is None and token is not None:
            authorization = f"Bearer {token}"
        metadata = (("authorization", authorization),) if authorization is not None else None
        what = f"{type(request).__name__.removesuffix('Request')}"
        try:
            response = await method(request, metadata=metadata, timeout=TIMEOUT)
        except grpc.aio.AioRpcError as error:
            return grpc_error_outcome(error, what)
        return Outcome("ok", _grpc_body(response), raw=f"gRPC {what} -> OK")

    async def register(
        self,
        username: str,
        email: str,
        password: str,
        first_name: str = "",
        last_name: str = "",
        *,
        user_agent: str | None = None,
    ) -> Outcome:
        request = auth_pb2.RegisterRequest(
            username=username, email=email, password=password, first_name=first_name, last_name=last_name
        )
        return await self._call(self.auth(user_agent).Register, request)

    async def login(self, who: str, password: str, *, user_agent: str | None = None) -> Outcome:
        request = auth_pb2.LoginRequest(username_or_email=who, password=password)
        return await self._call(self.auth(user_agent).Login, request)

    async def refresh(self, refresh_token: str) -> Outcome:
        return await self._call(self.auth().Refresh, auth_pb2.RefreshRequest(refresh_token=refresh_token))

    async def logout(self, token: str | None) -> Outcome:
        return await self._call(self.auth().Logout, auth_pb2.LogoutRequest(), token)

    async def me(self, token: str | None) -> Outcome:
        return await self._call(self.auth().Me, auth_pb2.MeRequest(), token)

    async def me_with_authorization(self, authorization: str) -> Outcome:
        return await self._call(self.auth().Me, auth_pb2.MeRequest(), authorization=authorization)

    async def sessions(self, token: str | None) -> Outcome:
        return await self._call(self.auth().ListSessions, auth_pb2.ListSessionsRequest(), token)

    async def revoke_session(self, token: str | None, session_id: str) -> Outcome:
        return await self._call(self.auth().RevokeSession, auth_pb2.RevokeSessionRequest(id=session_id), token)

    async def revoke_all(self, token: str | None, *, keep_current: bool = False) -> Outcome:
        request = auth_pb2.RevokeAllSessionsRequest(keep_current=keep_current)
        return await self._call(self.auth().RevokeAllSessions, request, token)

    async def validate(self, access_token: str) -> Outcome:
        """ValidateToken (REST: POST /auth/validate); no metadata needed."""
        request = auth_pb2.ValidateTokenRequest(access_token=access_token)
        return await self._call(self.auth().ValidateToken, request)

    async def forgot_password(self, email: str) -> Outcome:
        return await self._call(self.auth().ForgotPassword, auth_pb2.ForgotPasswordRequest(email=email))

    async def reset_password(self, token: str, new_password: str) -> Outcome:
        request = auth_pb2.ResetPasswordRequest(token=token, new_password=new_password)
        return await self._call(self.auth().ResetPassword, request)

    async def resend_verification(self, email: str) -> Outcome:
        return await self._call(self.auth().ResendVerification, auth_pb2.ResendVerificationRequest(email=email))

    async def verify_email(self, token: str) -> Outcome:
        return await self._call(self.auth().VerifyEmail, auth_pb2.VerifyEmailRequest(token=token))

    async def list_audit(self, token: str | None, *, user_id: str | None = None, event: str | None = None) -> Outcome:
        request = audit_pb2.ListEventsRequest()
        if user_id is not None:
            request.user_id = user_id
        if event is not None:
            request.event = event
        return await self._call(audit_pb2_grpc.AuditServiceStub(self._channel(None)).ListEvents, request, token)

    async def get_user(self, token: str | None, user_id: str) -> Outcome:
        return await self._call(self.users().GetUser, users_pb2.GetUserRequest(id=user_id), token)

    async def list_users(
        self,
        token: str | None,
        *,
        page: int | None = None,
        per_page: int | None = None,
        role: str | None = None,
        status: str | None = None,
        q: str | None = None,
    ) -> Outcome:
        optional = {"role": role, "status": status, "q": q}
        request = users_pb2.ListUsersRequest(
            page=page or 0, per_page=per_page or 0, **{k: v for k, v in optional.items() if v is not None}
        )
        return await self._call(self.users().ListUsers, request, token)

    async def create_user(
        self,
        token: str | None,
        username: str,
        email: str,
        password: str,
        first_name: str = "",
        last_name: str = "",
        role: str | None = None,
    ) -> Outcome:
        request = users_pb2.CreateUserRequest(
            username=username,
            email=email,
            password=password,
            first_name=first_name,
            last_name=last_name,
            role=role or "",
        )
        return await self._call(self.users().CreateUser, request, token)

    async def update_user(self, token: str | None, user_id: str, **changes: str) -> Outcome:
        return await self._call(self.users().UpdateUser, users_pb2.UpdateUserRequest(id=user_id, **changes), token)

    async def delete_user(self, token: str | None, user_id: str) -> Outcome:
        return await self._call(self.users().DeleteUser, users_pb2.DeleteUserRequest(id=user_id), token)

    async def change_password(self, token: str | None, user_id: str, current: str, new: str) -> Outcome:
        request = users_pb2.ChangePasswordRequest(id=user_id, current_password=current, new_password=new)
        return await self._call(self.users().ChangePassword, request, token)

    async def set_status(self, token: str | None, user_id: str, status: str) -> Outcome:
        return await self._call(self.users().SetStatus, users_pb2.SetStatusRequest(id=user_id, status=status), token)

    async def set_role(self, token: str | None, user_id: str, role: str) -> Outcome:
        return await self._call(self.users().SetRole, users_pb2.SetRoleRequest(id=user_id, role=role), token)

    async def verify(self, token: str | None, user_id: str) -> Outcome:
        return await self._call(self.users().VerifyUser, users_pb2.VerifyUserRequest(id=user_id), token)


# --- scenario helpers ------------------------------------------------------------------------------------------

PASSWORD = "violet-harbour-lantern-42"  # not in the common-password list
NEW_PASSWORD = "maroon-glacier-teapot-73"


def unique(prefix: str) -> str:
    """A username no other test on the shared server uses (lower case, within the 32-character limit).

    Registered with the running scenario's transcript, which shows it as a stable ``<name:N>``.
    """
    return volatile(f"{prefix[:18]}_{uuid.uuid4().hex[:10]}".lower())


async def register(client: Client, username: str, *, user_agent: str | None = None, **names: str) -> Tokens:
    """A new account (and its first session) with ``PASSWORD`` and ``<username>@example.com``."""
    return tokens(await client.register(username, f"{username}@example.com", PASSWORD, user_agent=user_agent, **names))


async def login(client: Client, who: str, password: str = PASSWORD, *, user_agent: str | None = None) -> Tokens:
    return tokens(await client.login(who, password, user_agent=user_agent))
