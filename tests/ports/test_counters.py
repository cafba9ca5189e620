"""The Counters port: the same from the in-process adapter, the database (SQLite, MariaDB), Redis, and the
gRPC client of the layered mode's repository tier serving the SQLite counters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from py_app.core.ports import Counters
from py_app.infra import remote
from py_app.infra.counters import CounterStore, InProcessCounters, RedisCounters, SqlCounters
from py_app.infra.db import create_engine
from py_app.infra.remote_stores import RemoteCounters
from tests.conftest import REDIS_TEST_URL, unavailable
from tests.ports.conftest import T0, Databases, repository_tier

pytestmark = pytest.mark.req("SRS-082", "SDD-103")


@pytest.fixture(
    params=[
        "in-process",
        "sqlite",
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("remote", marks=pytest.mark.req("SRS-191")),
    ]
)
async def counters(request: pytest.FixtureRequest, databases: Databases, redis_prefix: str) -> AsyncIterator[Counters]:
    if request.param == "in-process":
        yield InProcessCounters()
    elif request.param == "redis":
        client = Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
        try:
            await client.ping()
        except Exception as exc:  # noqa: BLE001
            await client.aclose()
            unavailable("Redis at 127.0.0.1:6379", exc)  # fails, not skips, in CI
        try:
            yield RedisCounters(client, redis_prefix)
        finally:
            async for key in client.scan_iter(f"{redis_prefix}*"):
                await client.delete(key)
            await client.aclose()
    else:
        engine = create_engine(await databases.url("sqlite" if request.param == "remote" else request.param))
        try:
            if request.param != "remote":
                yield SqlCounters(engine)
            else:
                async with repository_tier([remote.served(CounterStore, SqlCounters(engine))]) as target:
                    yield RemoteCounters(target)
        finally:
            await engine.dispose()


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_hits_count_up_within_a_window_and_start_again_after_it(counters: Counters) -> None:
    name = key()
    assert [await counters.hit(name, 60, T0) for _ in range(3)] == [(1, 60), (2, 60), (3, 60)]
    count, left = await counters.hit(name, 60, T0 + timedelta(seconds=20))
    assert count == 4
    assert 39 <= left <= 60  # Redis counts its own seconds


async def test_release_takes_one_back_and_reset_forgets(counters: Counters) -> None:
    name = key()
    for _ in range(3):
        await counters.hit(name, 60, T0)
    await counters.release(name)
    assert (await counters.hit(name, 60, T0))[0] == 3
    await counters.reset(name)
    assert (await counters.hit(name, 60, T0))[0] == 1
    await counters.release(key())  # nothing to take back: no error, nothing made


async def test_a_hold_lasts_its_seconds(counters: Counters) -> None:
    name = key()
    assert await counters.held(name, T0) == 0
    await counters.hold(name, 90, T0)
    assert 85 <= await counters.held(name, T0) <= 90


async def test_concurrent_hits_never_share_a_count(counters: Counters) -> None:
    name = key()
    counts = await asyncio.gather(*(counters.hit(name, 60, T0) for _ in range(20)))
    assert sorted(count for count, _ in counts) == list(range(1, 21))
