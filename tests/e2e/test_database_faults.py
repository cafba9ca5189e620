"""A database that hangs: a real server on a private mariadbd that is frozen (SIGSTOP) under load, then thawed.

Every request in flight must end within a bound with 503 + Retry-After (REST) or UNAVAILABLE + RetryInfo (gRPC),
readiness must turn 503 naming the database, and everything must work again once the database answers.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from tests.e2e.support import Server, migrate, start
from tests.faults.load import wait_until
from tests.faults.private import PrivateMariaDB, private_mariadb
from tests.support.logs import at_levels

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.timeout(240)]
DB_TIMEOUT = 2.0
BOUND = 2 * DB_TIMEOUT + 2  # what a request may take against a frozen database, with room for a loaded machine
PASSWORD = "correct horse battery"
EACH = 4  # requests of each kind, per protocol, all in flight at once


@dataclass(frozen=True)
class Outcome:
    what: str
    seconds: float
    status: str  # "503", "200" ... or a gRPC status name
    retry_hint: bool  # Retry-After header / google.rpc.RetryInfo detail
    code: str  # problem `code` / ErrorInfo reason


@pytest.fixture
def mariadb(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    with private_mariadb(tmp_path / "mariadb") as server:
        yield server


def rest_outcome(what: str, began: float, response: httpx.Response) -> Outcome:
    body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    hint = "retry-after" in response.headers
    return Outcome(what, time.monotonic() - began, str(response.status_code), hint, code)


def grpc_outcome(what: str, began: float, error: grpc.aio.AioRpcError | None) -> Outcome:
    seconds = time.monotonic() - began
    if error is None:
        return Outcome(what, seconds, "OK", False, "")
    hint, reason = False, ""
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            hint = True
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    return Outcome(what, seconds, error.code().name, hint, reason)


async def rest_call(http: httpx.AsyncClient, what: str, method: str, path: str, **kwargs: Any) -> Outcome:
    began = time.monotonic()
    return rest_outcome(what, began, await http.request(method, path, **kwargs))


async def grpc_call(what: str, call: Callable[[], Awaitable[object]]) -> Outcome:
    began = time.monotonic()
    try:
        await call()
    except grpc.aio.AioRpcError as error:
        return grpc_outcome(what, began, error)
    return grpc_outcome(what, began, None)


def grpc_register(name: str) -> auth_pb2.RegisterRequest:
    return auth_pb2.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD)


async def register_over_grpc(target: str, name: str) -> common_pb2.TokenResponse:
    async with grpc.aio.insecure_channel(target) as channel:
        answer: common_pb2.TokenResponse = await auth_pb2_grpc.AuthServiceStub(channel).Register(
            grpc_register(name), timeout=20
        )
    return answer


async def storm(server: Server, rest_tokens: dict[str, Any], grpc_tokens: common_pb2.TokenResponse) -> list[Outcome]:
    """Every kind of request, over both protocols, all at once, against the frozen database."""
    bearer = {"Authorization": f"Bearer {rest_tokens['access_token']}"}
    metadata = [("authorization", f"Bearer {grpc_tokens.access_token}")]
    login = {"username_or_email": rest_tokens["user"]["username"], "password": PASSWORD}
    async with (
        httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=30) as http,
        grpc.aio.insecure_channel(server.grpc) as channel,
    ):
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        grpc_login = auth_pb2.LoginRequest(username_or_email=grpc_tokens.user.username, password=PASSWORD)
        grpc_refresh = auth_pb2.RefreshRequest(refresh_token=grpc_tokens.refresh_token)
        calls: list[Awaitable[Outcome]] = []
        for n in range(EACH):
            name = f"late{uuid.uuid4().hex[:8]}"
            register = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
            calls += [
                rest_call(http, "rest login", "POST", "/auth/login", json=login),
                rest_call(http, "rest me", "GET", "/auth/me", headers=bearer),
                rest_call(http, "rest refresh", "POST", "/auth/refresh", json={"refresh_token": f"{n}x"}),
                rest_call(http, "rest register", "POST", "/auth/register", json=register),
                grpc_call("grpc login", partial(auth.Login, grpc_login, timeout=30)),
                grpc_call("grpc me", partial(auth.Me, auth_pb2.MeRequest(), metadata=metadata, timeout=30)),
                grpc_call("grpc refresh", partial(auth.Refresh, grpc_refresh, timeout=30)),
                grpc_call("grpc register", partial(auth.Register, grpc_register(f"g{name}"), timeout=30)),
            ]
        return list(await asyncio.gather(*calls))


async def grpc_health(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return int(answer.status)


def ready(server: Server) -> bool:
    try:
        return httpx.get(f"{server.http}/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.req("SRS-161", "SDD-161")
def test_a_frozen_database_turns_every_request_into_a_bounded_503_and_recovers(
    tmp_path: Path, mariadb: PrivateMariaDB
) -> None:
    settings = {"ARCANA_DATABASE_URL": mariadb.create_database(), "ARCANA_DB_TIMEOUT": str(DB_TIMEOUT)}
    migrate(tmp_path, **settings)
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, **settings)
    try:
        server.wait_ready()
        name = f"frozen{uuid.uuid4().hex[:8]}"
        made = httpx.post(
            f"{server.http}/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            timeout=20,
        )
        assert made.status_code == 201, made.text
        grpc_tokens = asyncio.run(register_over_grpc(server.grpc, f"g{name}"))

        mariadb.freeze()
        try:
            began = time.monotonic()
            outcomes = asyncio.run(storm(server, made.json(), grpc_tokens))
            storm_seconds = time.monotonic() - began
            readiness_began = time.monotonic()
            readiness = httpx.get(f"{server.http}/health/ready", timeout=30)
            readiness_seconds = time.monotonic() - readiness_began
            not_serving_after = wait_until(
                lambda: asyncio.run(grpc_health(server.grpc)) == health_pb2.HealthCheckResponse.NOT_SERVING, 15
            )
        finally:
            mariadb.thaw()

        slowest = max(outcome.seconds for outcome in outcomes)
        print(  # the measured bounds, for the report (pytest -s)
            f"frozen: {len(outcomes)} requests, slowest {slowest:.2f}s, all done in {storm_seconds:.2f}s; "
            f"readiness answered in {readiness_seconds:.2f}s; gRPC health NOT_SERVING after {not_serving_after:.2f}s"
        )
        for outcome in outcomes:
            expected = "503" if outcome.what.startswith("rest") else "UNAVAILABLE"
            assert (outcome.status, outcome.retry_hint, outcome.code) == (expected, True, "unavailable"), outcome
            assert outcome.seconds <= BOUND, outcome
        assert readiness.status_code == 503
        assert readiness.json()["checks"]["database"].startswith("fail"), readiness.json()
        assert readiness_seconds <= BOUND

        recovered_after = wait_until(lambda: ready(server), 20)
        print(f"ready again {recovered_after:.2f}s after the database was thawed")
        login = httpx.post(
            f"{server.http}/api/v1/auth/login",
            json={"username_or_email": name, "password": PASSWORD},
            timeout=20,
        )
        assert login.status_code == 200, login.text
        again = asyncio.run(register_over_grpc(server.grpc, f"after{name}"))
        assert again.access_token
        wait_until(lambda: asyncio.run(grpc_health(server.grpc)) == health_pb2.HealthCheckResponse.SERVING, 15)
    finally:
        server.stop()
    output = server.output()
    assert "Traceback" not in output, output[-3000:]
    assert not at_levels(output, "error"), output[-3000:]
