"""Bounded load for fault tests: client loops over REST and gRPC that record every outcome, in a thread of their own.

Every call has a client deadline, so a hang shows as a `timeout` outcome instead of stalling the test; every
loop stops when told to, so the load is bounded in time, and every client is one of a fixed number.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from tests.e2e.support import Server
from tests.support.logs import at_levels

PASSWORD = "correct horse battery"
CALL_TIMEOUT = 30.0  # a client deadline far beyond every bound a test asserts: a hang is seen, not waited out
OK = frozenset({"200", "201", "OK"})


@dataclass(frozen=True)
class Outcome:
    what: str  # "rest register", "grpc me" ...
    began: float  # time.monotonic() when the call was sent
    ended: float
    status: str  # "201", "503" ... a gRPC code name, or a transport error's class name
    retry_hint: bool = False  # Retry-After (REST) / a RetryInfo detail (gRPC)
    name: str = ""  # the username a create asked for

    @property
    def seconds(self) -> float:
        return self.ended - self.began

    @property
    def acknowledged(self) -> bool:
        return self.status in OK

    @property
    def rest(self) -> bool:
        return self.what.startswith("rest")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def rest_client(server: Server, *, keep_alive: bool = True) -> httpx.AsyncClient:
    # Without keep-alive every request has a connection of its own, so a drain's closing of idle
    # connections never races a request sent on one.
    limits = httpx.Limits(max_keepalive_connections=None if keep_alive else 0)
    return httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=CALL_TIMEOUT, limits=limits)


async def rest(http: httpx.AsyncClient, what: str, method: str, path: str, name: str = "", **kwargs: Any) -> Outcome:
    """One REST call; ``Outcome.status`` is the status code or the transport error's class name."""
    began = time.monotonic()
    try:
        response = await http.request(method, path, **kwargs)
    except httpx.TransportError as error:
        return Outcome(what, began, time.monotonic(), type(error).__name__, name=name)
    hint = "retry-after" in response.headers
    return Outcome(what, began, time.monotonic(), str(response.status_code), hint, name)


async def rpc(
    what: str, method: Callable[..., Awaitable[Any]], request: object, bearer: str = "", name: str = ""
) -> tuple[Outcome, Any]:
    """One gRPC call (with the bearer token, if any) and its answer (None when it failed)."""
    metadata = [("authorization", f"Bearer {bearer}")] if bearer else []
    began = time.monotonic()
    try:
        answer = await method(request, metadata=metadata, timeout=CALL_TIMEOUT)
    except grpc.aio.AioRpcError as error:
        status = rpc_status.from_call(error)
        hint = any(detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for detail in (status.details if status else ()))
        code = "timeout" if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED else error.code().name
        return Outcome(what, began, time.monotonic(), code, hint, name), None
    return Outcome(what, began, time.monotonic(), "OK", name=name), answer


async def rest_register(http: httpx.AsyncClient, prefix: str) -> Outcome:
    name = unique(prefix)
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    return await rest(http, "rest register", "POST", "/auth/register", name, json=body)


async def grpc_register(channel: grpc.aio.Channel, prefix: str) -> Outcome:
    name = unique(prefix)
    request = auth_pb2.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD)
    outcome, _ = await rpc("grpc register", auth_pb2_grpc.AuthServiceStub(channel).Register, request, name=name)
    return outcome


Client = Callable[[int, Callable[[], bool], list["Outcome"]], Awaitable[None]]
"""One client of a load: its number, "has the load been stopped?", and where its outcomes go."""


class Load:
    """``clients`` coroutines, each calling ``step`` in a loop until ``stop``; run on a loop in its own thread."""

    def __init__(self, client: Client, clients: int) -> None:
        self._client = client
        self._clients = clients
        self._stopped = threading.Event()
        self.outcomes: list[Outcome] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        async def main() -> None:
            running = self._stopped.is_set
            await asyncio.gather(*(self._client(n, running, self.outcomes) for n in range(self._clients)))

        try:
            asyncio.run(main())
        except BaseException as error:  # noqa: BLE001 - reported by stop()
            self._error = error

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, seconds: float = CALL_TIMEOUT + 15) -> list[Outcome]:
        self._stopped.set()
        self._thread.join(seconds)
        if self._thread.is_alive():
            pytest.fail(f"load did not stop within {seconds}s")
        if self._error is not None:
            raise self._error
        return self.outcomes

    def since(self, moment: float) -> list[Outcome]:
        return [outcome for outcome in list(self.outcomes) if outcome.began >= moment]

    def wait_for(self, count: int, seconds: float = 60) -> None:
        """Until ``count`` calls have been acknowledged (the load is really flowing)."""
        deadline = time.monotonic() + seconds
        while sum(outcome.acknowledged for outcome in list(self.outcomes)) < count:
            if time.monotonic() > deadline or not self._thread.is_alive():
                pytest.fail(f"fewer than {count} calls acknowledged within {seconds}s: {self.outcomes[-5:]}")
            time.sleep(0.1)


def creates(
    server: Server, prefix: str, *, pause: float = 0.0, keep_alive: bool = True, give_up: frozenset[str] = frozenset()
) -> Client:
    """A client that registers accounts in a loop, even-numbered over REST, odd-numbered over gRPC; it ends
    early on an outcome whose status is in ``give_up`` (a server that is gone is not hammered)."""

    async def client(n: int, stopped: Callable[[], bool], outcomes: list[Outcome]) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if n % 2 == 0:
                http = await stack.enter_async_context(rest_client(server, keep_alive=keep_alive))
                call = partial(rest_register, http, f"{prefix}r")
            else:
                channel = await stack.enter_async_context(grpc.aio.insecure_channel(server.grpc))
                call = partial(grpc_register, channel, f"{prefix}g")
            while not stopped():
                outcomes.append(outcome := await call())
                if outcome.status in give_up:
                    return
                await asyncio.sleep(pause)

    return client


def wait_until(predicate: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``predicate`` held; fails the test after ``seconds``."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > seconds:
            pytest.fail(f"not within {seconds}s")
        time.sleep(0.2)
    return time.monotonic() - began


def readiness(server: Server) -> tuple[int, dict[str, Any]]:
    """Status and body of /health/ready (0 and {} when the server does not answer)."""
    with contextlib.suppress(httpx.TransportError):
        response = httpx.get(f"{server.http}/health/ready", timeout=10)
        return response.status_code, response.json()
    return 0, {}


def live_seconds(server: Server) -> float:
    """How long /health/live took to answer 200."""
    began = time.monotonic()
    response = httpx.get(f"{server.http}/health/live", timeout=CALL_TIMEOUT)
    assert response.status_code == 200, response.text
    return time.monotonic() - began


def assert_clean_log(server: Server) -> None:
    """No traceback and nothing at error level: every fault was an expected, handled one."""
    output = server.output()
    at = output.find("Traceback")
    assert at < 0, output[max(0, at - 1000) : at + 3000]  # what came before and the whole traceback
    assert not at_levels(output, "error"), output[-3000:]


def assert_clean_failures(outcomes: list[Outcome], bound: float) -> None:
    """Every call that was not acknowledged failed the documented way, fast: 503 + Retry-After over REST,
    UNAVAILABLE + RetryInfo over gRPC; every call, acknowledged or not, ended within ``bound`` seconds."""
    for outcome in outcomes:
        assert outcome.seconds <= bound, outcome
        if not outcome.acknowledged:
            assert (outcome.status, outcome.retry_hint) == ("503" if outcome.rest else "UNAVAILABLE", True), outcome
