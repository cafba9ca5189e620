"""Login throttling and rate limits on real server processes: one worker, two workers, two replicas sharing
Redis; and what happens when Redis goes away. The clients are httpx and the generated gRPC stubs.

The tests that need nothing but the default limits on one worker share one server (``limited``): each uses
accounts and client addresses of its own, so no counter one of them moves is one another reads."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import redis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from tests.conftest import free_port
from tests.e2e.support import ROOT, STOP_SECONDS, Server, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
SECRET = "limits-suite-signing-secret-0123456789abcdefghij"
PASSWORD = "violet harbour lantern 42"
V1 = "/api/v1"


def serve(folder: Path, database_url: str = "", **env: str) -> Server:
    """A server with the default limits on, believing X-Forwarded-For from 127.0.0.1 (the tests' proxy)."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"ARCANA_JWT_SECRET": SECRET, "ARCANA_TRUSTED_PROXIES": "127.0.0.1/32", **env}
    if database_url:
        settings["ARCANA_DATABASE_URL"] = database_url
    migrate = [sys.executable, "-m", "py_app", "migrate"]
    environ = {**os.environ, "ARCANA_DATA_DIR": str(folder / "var"), **settings}
    done = subprocess.run(migrate, cwd=ROOT, env=environ, capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    server = start([sys.executable, "-m", "py_app", "serve"], folder, **settings)
    server.wait_ready()
    return server


def stop(*servers: Server) -> None:
    for server in servers:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(STOP_SECONDS)
        server.stop()


async def register(http: str, name: str, address: str = "192.0.2.1") -> dict[str, object]:
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    async with httpx.AsyncClient(base_url=http, timeout=30) as client:
        response = await client.post(f"{V1}/auth/register", json=body, headers={"x-forwarded-for": address})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def storm(targets: list[str], login: str, count: int, address: str) -> list[httpx.Response]:
    """``count`` wrong logins at once, spread over ``targets``, each on its own connection."""

    async def one(target: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=target, timeout=60) as client:
            body = {"username_or_email": login, "password": "not the password"}
            return await client.post(f"{V1}/auth/login", json=body, headers={"x-forwarded-for": address})

    return await asyncio.gather(*(one(targets[n % len(targets)]) for n in range(count)))


def assert_storm(responses: list[httpx.Response]) -> None:
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401] * 5 + [429] * 45, statuses  # five evaluated; the rest never reached a hash
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["code"] == "rate_limited"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker, default limits, SQLite: shared by the tests that need only that."""
    server = serve(tmp_path_factory.mktemp("limited"))
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture
def redis_prefix_env(redis_url: str, redis_prefix: str) -> Iterator[dict[str, str]]:
    yield {"ARCANA_REDIS_URL": redis_url, "ARCANA_REDIS_PREFIX": redis_prefix}
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(f"{redis_prefix}*"):
            client.delete(key)
    finally:
        client.close()


@pytest.mark.req("SRS-103")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_fifty_concurrent_wrong_logins_evaluate_at_most_five(
    request: pytest.FixtureRequest, tmp_path: Path, workers: str
) -> None:
    own = workers != "1"
    server = serve(tmp_path / "one", ARCANA_WORKERS=workers) if own else request.getfixturevalue("limited")
    try:
        name = f"storm{uuid.uuid4().hex[:8]}"
        asyncio.run(register(server.http, name))
        assert_storm(asyncio.run(storm([server.http], name, 50, "198.51.100.10")))
        # Locked: the right password too, for a while, and with the same answer an unknown name gets.
        locked = asyncio.run(storm([server.http], name, 1, "198.51.100.11"))[0]
        right = httpx.post(
            f"{server.http}{V1}/auth/login",
            json={"username_or_email": name, "password": PASSWORD},
            headers={"x-forwarded-for": "198.51.100.12"},
            timeout=30,
        )
        assert (locked.status_code, right.status_code) == (429, 429)
        assert right.json()["detail"] == locked.json()["detail"]
    finally:
        if own:
            stop(server)


@pytest.mark.req("SRS-103")
@pytest.mark.redis
@pytest.mark.mariadb
def test_two_replicas_sharing_redis_count_together(
    tmp_path: Path, mariadb_url: str, redis_prefix_env: dict[str, str]
) -> None:
    first = serve(tmp_path / "a", mariadb_url, **redis_prefix_env)
    second = serve(tmp_path / "b", mariadb_url, **redis_prefix_env)
    try:
        name = f"replica{uuid.uuid4().hex[:8]}"
        asyncio.run(register(first.http, name))
        assert_storm(asyncio.run(storm([first.http, second.http], name, 50, "198.51.100.20")))
    finally:
        stop(first, second)


@pytest.mark.req("SRS-103")
def test_an_unknown_account_locks_exactly_as_a_known_one(limited: Server) -> None:
    server = limited
    known = f"known{uuid.uuid4().hex[:8]}"
    asyncio.run(register(server.http, known, address="192.0.2.2"))
    answers = {}
    for login in (known, f"ghost{uuid.uuid4().hex[:8]}"):
        responses = [asyncio.run(storm([server.http], login, 1, f"203.0.113.{n}"))[0] for n in range(7)]
        answers[login] = [(r.status_code, r.json()["detail"]) for r in responses]
    assert answers[known] == next(iter(answers.values()))
    assert [status for status, _ in answers[known]] == [401] * 5 + [429] * 2


@pytest.mark.req("SRS-104")
def test_rate_limits_answer_429_with_retry_after_and_resource_exhausted_with_retry_info(limited: Server) -> None:
    server = limited
    for _ in range(5):
        asyncio.run(register(server.http, f"reg{uuid.uuid4().hex[:8]}", address="192.0.2.50"))
    body = {"username": f"reg{uuid.uuid4().hex[:8]}", "email": "six@example.com", "password": PASSWORD}
    sixth = httpx.post(f"{server.http}{V1}/auth/register", json=body, headers={"x-forwarded-for": "192.0.2.50"})
    assert sixth.status_code == 429
    assert 1 <= int(sixth.headers["retry-after"]) <= 3600
    assert sixth.json()["code"] == "rate_limited"
    # The address is the hop our trusted proxy saw (rightmost), not what a client wrote before it.
    spoofed = {"x-forwarded-for": "192.0.2.50, 192.0.2.51"}
    assert httpx.post(f"{server.http}{V1}/auth/register", json=body, headers=spoofed).status_code == 201

    async def over_grpc() -> grpc.aio.AioRpcError:
        metadata = [("x-forwarded-for", "192.0.2.50")]
        request = auth_pb2.RegisterRequest(
            username=f"g{uuid.uuid4().hex[:8]}", email="g@example.com", password=PASSWORD
        )
        async with grpc.aio.insecure_channel(server.grpc) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await auth_pb2_grpc.AuthServiceStub(channel).Register(request, metadata=metadata, timeout=30)
        return caught.value

    error = asyncio.run(over_grpc())
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(error)
    assert status is not None
    retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert len(retry) == 1
    info = error_details_pb2.RetryInfo()
    retry[0].Unpack(info)
    assert 1 <= info.retry_delay.seconds <= 3600


@pytest.mark.req("SRS-103")
def test_with_redis_gone_logins_still_work_on_this_processs_counters_and_the_log_says_so(tmp_path: Path) -> None:
    port = free_port()
    private = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server: Server | None = None
    try:
        time.sleep(0.3)
        server = serve(tmp_path / "one", ARCANA_REDIS_URL=f"redis://127.0.0.1:{port}/0")
        name = f"noredis{uuid.uuid4().hex[:8]}"
        asyncio.run(register(server.http, name))
        private.terminate()  # our own Redis, never the shared one
        private.wait(10)
        wrong = asyncio.run(storm([server.http], name, 1, "198.51.100.30"))[0]
        right = httpx.post(
            f"{server.http}{V1}/auth/login",
            json={"username_or_email": name, "password": PASSWORD},
            headers={"x-forwarded-for": "198.51.100.30"},
            timeout=30,
        )
        assert (wrong.status_code, right.status_code) == (401, 200)
        assert "redis unavailable: rate limits and lockouts count in this process only" in server.output()
    finally:
        if private.poll() is None:
            private.kill()
        if server is not None:
            stop(server)


@pytest.mark.req("SRS-105")
def test_login_takes_as_long_for_unknown_accounts_as_for_known_ones_with_limits_on(tmp_path: Path) -> None:
    server = serve(tmp_path / "one", ARCANA_LIMIT_REGISTER_ADDRESS="100/3600")
    try:
        known = [f"timing{uuid.uuid4().hex[:8]}" for _ in range(30)]
        for name in known:
            asyncio.run(register(server.http, name))
        unknown = [f"nobody{uuid.uuid4().hex[:8]}" for _ in range(30)]
        spent: dict[str, list[float]] = {"known": [], "unknown": []}
        answers: dict[str, set[tuple[int, str]]] = {"known": set(), "unknown": set()}
        with httpx.Client(base_url=server.http, timeout=30) as client:
            for index, (mine, ghost) in enumerate(zip(known, unknown, strict=True)):  # interleaved: same load on both
                for kind, login in (("known", mine), ("unknown", ghost)):
                    headers = {"x-forwarded-for": f"10.1.{index}.{1 if kind == 'known' else 2}"}
                    began = time.perf_counter()
                    response = client.post(
                        f"{V1}/auth/login", json={"username_or_email": login, "password": "wrong one!"}, headers=headers
                    )
                    spent[kind].append(time.perf_counter() - began)
                    answers[kind].add((response.status_code, response.text))
        assert answers["known"] == answers["unknown"]
        assert len(answers["known"]) == 1  # one body for every failure
        ratio = statistics.median(spent["known"]) / statistics.median(spent["unknown"])
        # What this catches is a login that skips the hash for an unknown account: a ratio of 10 or more (one
        # argon2id verify, ~15-50 ms, against a lookup of ~1 ms). A band of 2x each way keeps that far outside
        # while a shared, loaded machine (0.8-1.25 seen under five parallel test runs) stays inside.
        assert 0.5 <= ratio <= 2.0, (ratio, statistics.median(spent["known"]), statistics.median(spent["unknown"]))
    finally:
        stop(server)
