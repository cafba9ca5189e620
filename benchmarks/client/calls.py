"""One call at a time from the stock Python clients: httpx for REST, the generated grpc stubs for gRPC.

The calls are the load suite's (benchmarks/wire.py): same paths, bodies, messages and credentials.
Every call checks its outcome, so a failing call fails the benchmark instead of timing an error.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx

from benchmarks import wire
from py_app._proto.arcana.v1 import auth_pb2_grpc, users_pb2_grpc

STUBS = {"UserService": users_pb2_grpc.UserServiceStub, "AuthService": auth_pb2_grpc.AuthServiceStub}
TIMEOUT = 30.0


def _bodies(op: str, tokens: list[str]) -> Iterator[dict[str, Any]]:
    if op == "refresh":
        return (wire.refresh_fields(token) for token in tokens)  # StopIteration when spent: a loud failure
    tag = f"c{os.urandom(3).hex()}x"
    return (wire.new_user_fields(tag, index) for index in itertools.count())


def rest_call(
    client: httpx.Client, op: str, accounts: wire.Accounts, tokens: list[str]
) -> Callable[[], httpx.Response]:
    call = wire.CALLS[op]
    path, headers = call.path(accounts), dict(wire.headers(call, accounts, "rest"))
    if call.varied:
        bodies = _bodies(op, tokens)

        def varied() -> httpx.Response:
            body = wire.rest_body(next(bodies))
            return _ok(client.request(call.rest_method, path, headers=headers, content=body))

        return varied
    content = wire.rest_body(call.fields(accounts)) if call.rest_method == "POST" else None

    def fixed() -> httpx.Response:
        return _ok(client.request(call.rest_method, path, headers=headers, content=content))

    return fixed


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 300:
        raise AssertionError(f"{response.request.method} {response.request.url.path}: {response.status_code}")
    return response


def grpc_call(channel: grpc.Channel, op: str, accounts: wire.Accounts, tokens: list[str]) -> Callable[[], Any]:
    call = wire.CALLS[op]
    _, service, method = call.grpc_method.split("/")
    stub_method = getattr(STUBS[service.rsplit(".", 1)[1]](channel), method)
    metadata = wire.headers(call, accounts, "grpc")
    if call.varied:
        bodies = _bodies(op, tokens)

        def varied() -> Any:
            return stub_method(wire.grpc_message(call, next(bodies)), metadata=metadata, timeout=TIMEOUT)

        return varied
    request = wire.grpc_message(call, call.fields(accounts))

    def fixed() -> Any:
        return stub_method(request, metadata=metadata, timeout=TIMEOUT)

    return fixed
