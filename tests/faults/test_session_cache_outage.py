"""The shared session cache under faults: two replicas on one MariaDB database share a private Redis (one key
prefix); logouts flow through replica A while the cache holds every session on both replicas.

- Redis killed in the middle of the storm (and started again, empty, before it ends): every logout is still
  acknowledged, and from the next request on, both replicas refuse its token over REST and gRPC, while the
  sessions not logged out keep being served (from the database while Redis is gone).
- A partitioned from Redis (a TCP proxy that lets nothing through, then delivers it all late) while B still
  reaches it: A acknowledges a logout only once no copy B could serve remains, and B refuses it from the next
  request; once the partition heals, A uses the cache again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from tests.e2e.support import Server
from tests.faults.load import PASSWORD, assert_clean_log, unique
from tests.faults.private import PrivateServer, private_redis
from tests.faults.proxy import latency_proxy

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.redis, pytest.mark.timeout(300)]
TTL, DB_TIMEOUT = 2.0, 2.0
HOLD = TTL + DB_TIMEOUT + 1.0 + 0.5  # RedisSessionCache.hold for these settings
PARTITION_TTL = 8.0
PARTITION_HOLD = PARTITION_TTL + DB_TIMEOUT + 1.0 + 0.5
SESSIONS = 24
CLIENTS = 6
BOUND = HOLD + 15.0  # what an acknowledged logout may take at worst, with room for CI under coverage


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateServer]:
    with private_redis(tmp_path / "redis") as server:
        yield server


def settings(mariadb_url: str, redis_port: int, prefix: str, ttl: float = TTL) -> dict[str, str]:
    return {
        "ARCANA_DATABASE_URL": mariadb_url,
        "ARCANA_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "ARCANA_REDIS_PREFIX": prefix,
        "ARCANA_JWT_SECRET": "replicas-share-this-secret-0123456789abcdef",
        "ARCANA_RATE_LIMITS": "false",
        "ARCANA_SESSION_CACHE_TTL": str(ttl),
        "ARCANA_DB_TIMEOUT": str(DB_TIMEOUT),
    }


async def open_sessions(server: Server, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=60) as http:

        async def one() -> str:
            name = unique("st")
            body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
            response = await http.post("/auth/register", json=body)
            assert response.status_code == 201, response.text
            return str(response.json()["access_token"])

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def answers(server: Server, token: str) -> tuple[int, str]:
    """GET /auth/me over REST and AuthService/Me over gRPC, each on a connection of its own."""
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=30) as http:
        status = (await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code
    async with grpc.aio.insecure_channel(server.grpc) as channel:
        try:
            await auth_pb2_grpc.AuthServiceStub(channel).Me(
                auth_pb2.MeRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=30
            )
            code = "OK"
        except grpc.aio.AioRpcError as error:
            code = error.code().name
    return status, code


async def log_out(server: Server, token: str, over_grpc: bool) -> tuple[str, float]:
    began = time.monotonic()
    if over_grpc:
        async with grpc.aio.insecure_channel(server.grpc) as channel:
            try:
                await auth_pb2_grpc.AuthServiceStub(channel).Logout(
                    auth_pb2.LogoutRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=60
                )
                status = "OK"
            except grpc.aio.AioRpcError as error:
                status = error.code().name
    else:
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.post(
                f"{server.http}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
            )
            status = str(response.status_code)
    return status, time.monotonic() - began


async def warm(replicas: list[Server], tokens: list[str]) -> None:
    """Every session cached: read twice through each replica."""
    for server in replicas:
        for _ in range(2):
            assert set(await asyncio.gather(*(answers(server, t) for t in tokens))) == {(200, "OK")}


@pytest.mark.req("SRS-186")
def test_a_logout_storm_through_a_redis_outage_never_leaves_an_acknowledged_session_usable(
    redis: PrivateServer, serve: Callable[..., Server], mariadb_url: str
) -> None:
    config = settings(mariadb_url, redis.port, f"faults:{uuid.uuid4().hex[:8]}:")
    a, b = serve(**config), serve(**config)
    tokens = asyncio.run(open_sessions(a, SESSIONS * 2))
    leaving, staying = tokens[:SESSIONS], tokens[SESSIONS:]
    asyncio.run(warm([a, b], tokens))
    failures: list[str] = []
    durations: list[float] = []

    async def storm() -> None:
        queue = list(enumerate(leaving))
        done = 0
        quarter = asyncio.Event()

        async def client() -> None:
            nonlocal done
            while queue:
                n, token = queue.pop(0)
                status, seconds = await log_out(a, token, over_grpc=n % 2 == 1)
                durations.append(seconds)
                if status not in ("204", "OK"):
                    failures.append(f"logout {n}: {status}")
                    continue
                for server, name in ((b, "B"), (a, "A")):  # the very next requests, no pause
                    if (seen := await answers(server, token)) != (401, "UNAUTHENTICATED"):
                        failures.append(f"logout {n} acknowledged, then {name} answered {seen}")
                done += 1
                if done >= SESSIONS // 4:
                    quarter.set()

        async def outage() -> None:
            await quarter.wait()
            redis.kill()
            await asyncio.sleep(HOLD * 1.5)  # logouts acknowledged with Redis gone (the hold)
            for token in staying[:4]:  # the service keeps serving, from the database
                if (seen := await answers(b, token)) != (200, "OK") or (seen := await answers(a, token)) != (200, "OK"):
                    failures.append(f"a live session refused during the outage: {seen}")
            redis.restart()  # empty: forgets still pending land now

        await asyncio.gather(outage(), *(client() for _ in range(CLIENTS)))

    asyncio.run(storm())
    print(f"{len(durations)} logouts, slowest {max(durations):.2f}s (hold {HOLD:.1f}s)")  # for the report (-s)
    assert failures == []
    assert max(durations) <= BOUND
    for token in leaving:  # still refused everywhere after Redis is back
        assert asyncio.run(answers(b, token)) == (401, "UNAUTHENTICATED")
    asyncio.run(warm([a, b], staying))  # served (and cached) again
    assert_clean_log(a)
    assert_clean_log(b)


@pytest.mark.req("SRS-186")
def test_a_replica_cut_off_from_redis_acknowledges_a_logout_only_once_no_other_replica_can_serve_it(
    redis: PrivateServer, serve: Callable[..., Server], mariadb_url: str
) -> None:
    prefix = f"faults:{uuid.uuid4().hex[:8]}:"
    with latency_proxy(redis.port) as proxy:
        # A longer TTL here: B surely still holds every session when the logouts begin, so acknowledging
        # before the hold would let B serve a logged-out session (what this test would catch).
        a = serve(**settings(mariadb_url, proxy.port, prefix, ttl=PARTITION_TTL))
        b = serve(**settings(mariadb_url, redis.port, prefix, ttl=PARTITION_TTL))
        tokens = asyncio.run(open_sessions(a, 6))
        asyncio.run(warm([a, b], tokens))
        asyncio.run(warm([b], tokens[:4]))

        async def partitioned() -> list[tuple[str, float, tuple[int, str], tuple[int, str]]]:
            async def one(n: int, token: str) -> tuple[str, float, tuple[int, str], tuple[int, str]]:
                status, seconds = await log_out(a, token, over_grpc=n % 2 == 1)
                return status, seconds, await answers(b, token), await answers(a, token)

            return list(await asyncio.gather(*(one(n, t) for n, t in enumerate(tokens[:4]))))

        proxy.blocked = True
        try:
            outcomes = asyncio.run(partitioned())
            still = asyncio.run(answers(a, tokens[5]))  # A serves from the database meanwhile
        finally:
            proxy.blocked = False  # what A sent during the partition arrives now, late
        for status, seconds, on_b, on_a in outcomes:
            assert status in ("204", "OK")
            assert (on_b, on_a) == ((401, "UNAUTHENTICATED"), (401, "UNAUTHENTICATED"))
            assert PARTITION_HOLD <= seconds <= PARTITION_HOLD + 15.0  # held until B's copies had expired
        assert still == (200, "OK")
        time.sleep(1.5)  # A retries Redis after its pause
        asyncio.run(warm([a, b], tokens[4:]))
        for token in tokens[:4]:
            assert asyncio.run(answers(b, token)) == (401, "UNAUTHENTICATED")
            assert asyncio.run(answers(a, token)) == (401, "UNAUTHENTICATED")
    assert_clean_log(a)
    assert_clean_log(b)
