"""Redis killed while the service serves with ARCANA_REDIS_URL pointing at it, then started again (empty).

As the README documents: the service keeps serving, rate limits and the login lock keep holding in the
process (in-process counters), readiness stays 200 with `degraded`, and the counters return to Redis once it
answers again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.e2e.support import Server
from tests.faults.load import PASSWORD, Load, assert_clean_log, creates, readiness, unique, wait_until
from tests.faults.private import PrivateServer, private_redis

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.timeout(240)]
CLIENTS = 4
BOUND = 10.0  # what one call may take while Redis is gone: its client's timeouts are 2 s, with room for CI
RECOVER = 45.0  # readiness pings Redis on every check; the pooled client reconnects on its next command


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateServer]:
    with private_redis(tmp_path / "redis") as server:
        yield server


def counter_keys(redis: PrivateServer, prefix: str) -> int:
    async def count() -> int:
        client = Redis(host="127.0.0.1", port=redis.port, socket_timeout=5)
        try:
            return len(await client.keys(f"{prefix}*"))
        finally:
            await client.aclose()

    return asyncio.run(count())


def register(server: Server) -> str:
    name = unique("acct")
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    response = httpx.post(f"{server.http}/api/v1/auth/register", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return name


def wrong_logins(server: Server, name: str, times: int) -> list[httpx.Response]:
    body = {"username_or_email": name, "password": "not the password at all"}
    with httpx.Client(base_url=f"{server.http}/api/v1", timeout=30) as http:
        return [http.post("/auth/login", json=body) for _ in range(times)]


@pytest.mark.req("SRS-181")
def test_a_killed_redis_leaves_the_service_serving_with_limits_held_in_process(
    redis: PrivateServer, serve: Callable[..., Server]
) -> None:
    prefix = f"faults:{uuid.uuid4().hex[:8]}:"
    server = serve(
        ARCANA_REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
        ARCANA_REDIS_PREFIX=prefix,
        ARCANA_LIMIT_REGISTER_ADDRESS="100000/3600",  # the load registers many accounts from one address
    )
    assert readiness(server)[1]["status"] == "ok"
    wrong_logins(server, register(server), 1)
    assert counter_keys(redis, prefix) > 0  # the counters live in Redis

    with Load(creates(server, "redis", pause=0.05), CLIENTS) as load:
        load.wait_for(10)
        killed = time.monotonic()
        redis.kill()
        locked = wrong_logins(server, register(server), 7)
        status, body = readiness(server)
        time.sleep(2)
        outage_ended = time.monotonic()
        redis.restart()
        back_after = wait_until(lambda: readiness(server)[1].get("status") == "ok", RECOVER)
        time.sleep(1)
    outcomes = load.outcomes

    during = [o for o in outcomes if killed <= o.began and o.ended <= outage_ended]
    print(  # the measured figures, for the report (pytest -s)
        f"{len(outcomes)} creates, {len(during)} during the outage (slowest {max(o.seconds for o in during):.2f}s); "
        f"readiness ok {back_after:.2f}s after Redis returned"
    )
    assert {o.what for o in during} == {"rest register", "grpc register"}, during
    for outcome in outcomes:
        assert outcome.acknowledged, outcome
        assert outcome.seconds <= BOUND, outcome
    assert [r.status_code for r in locked[:5]] == [401] * 5, [r.text for r in locked]
    assert locked[-1].status_code == 429, locked[-1].text  # the lock holds, counted in the process
    assert "retry-after" in locked[-1].headers
    assert (status, body["status"], body["checks"]["redis"][:4]) == (200, "degraded", "fail"), body

    assert counter_keys(redis, prefix) > 0  # Redis came back empty (it saves nothing): the counters are there again
    assert_clean_log(server)
