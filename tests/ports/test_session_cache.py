"""The SessionCache port: the in-process adapter and the Redis one (real Redis, the test's own key prefix) refuse
a fill stamped before an invalidation, and the Redis one shares every invalidation between processes (two
adapters on two clients stand for two replicas), survives a Redis restart without serving a stale fill, and
reads the database while Redis is gone, acknowledging an invalidation only once no copy can be served."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from py_app.auth.ports import SessionCache
from py_app.core.identity import Principal
from py_app.infra.cache import InProcessSessionCache, RedisSessionCache
from tests.conftest import REDIS_TEST_URL, free_port, unavailable
from tests.faults.private import private_redis

ALICE = Principal("user-a", "session-a", "user")
ALICE_TOO = Principal("user-a", "session-a2", "user")
BOB = Principal("user-b", "session-b", "admin", verified=False)

pytestmark = pytest.mark.req("SDD-185")

Replica = Callable[..., Awaitable[RedisSessionCache]]


@pytest.fixture
async def replica(redis_prefix: str) -> AsyncIterator[Replica]:
    """A Redis session cache on a client of its own (another replica), all on the test's prefix."""
    clients: list[Redis] = []

    async def make(ttl: float = 60.0, db_timeout: float = 5.0) -> RedisSessionCache:
        client = Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2, socket_timeout=2)
        clients.append(client)
        try:
            await client.ping()
        except Exception as exc:  # noqa: BLE001
            unavailable("Redis at 127.0.0.1:6379", exc)  # fails, not skips, in CI
        return RedisSessionCache(client, redis_prefix, ttl, db_timeout)

    yield make
    for client in clients:
        async for key in client.scan_iter(f"{redis_prefix}*"):
            await client.delete(key)
        await client.aclose()


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
async def cache(request: pytest.FixtureRequest, replica: Replica) -> SessionCache:
    if request.param == "in-process":
        return InProcessSessionCache(ttl=60)
    return await replica()


async def fill(cache: SessionCache, principal: Principal) -> None:
    await cache.put(principal, await cache.stamp(principal.session_id, principal.user_id))


async def test_a_fill_read_before_a_forget_is_refused_and_others_are_kept(cache: SessionCache) -> None:
    alice, bob = await cache.stamp(ALICE.session_id, ALICE.user_id), await cache.stamp(BOB.session_id, BOB.user_id)
    await cache.forget([ALICE.session_id])  # alice logs out while both requests read the database
    await cache.put(ALICE, alice)
    await cache.put(BOB, bob)
    assert await cache.get(ALICE.session_id) is None
    assert await cache.get(BOB.session_id) == BOB  # role and verified come back as they went in


async def test_forgetting_a_user_drops_every_session_of_theirs_and_voids_their_fills(cache: SessionCache) -> None:
    await fill(cache, ALICE)
    await fill(cache, ALICE_TOO)
    await fill(cache, BOB)
    racing = await cache.stamp(ALICE.session_id, ALICE.user_id)
    await cache.forget_user(ALICE.user_id)  # a role change, a suspension, a password change
    assert [await cache.get(p.session_id) for p in (ALICE, ALICE_TOO, BOB)] == [None, None, BOB]
    await cache.put(ALICE, racing)
    assert await cache.get(ALICE.session_id) is None
    await fill(cache, ALICE)  # read after the change: cached again
    assert await cache.get(ALICE.session_id) == ALICE


async def test_forgetting_a_session_twice_or_none_is_harmless(cache: SessionCache) -> None:
    await cache.forget([])
    await cache.forget([ALICE.session_id, ALICE.session_id])
    await fill(cache, ALICE)
    assert await cache.get(ALICE.session_id) == ALICE


@pytest.mark.redis
async def test_an_invalidation_by_one_replica_ends_the_entry_and_the_racing_fills_of_another(replica: Replica) -> None:
    a, b = await replica(), await replica()
    await fill(b, ALICE)
    assert await a.get(ALICE.session_id) == ALICE  # one shared cache
    racing = await b.stamp(BOB.session_id, BOB.user_id)
    await a.forget([ALICE.session_id])
    await a.forget_user(BOB.user_id)
    await b.put(BOB, racing)
    assert await b.get(ALICE.session_id) is None
    assert await b.get(BOB.session_id) is None


@pytest.mark.redis
async def test_a_fill_stamped_before_redis_lost_its_data_is_refused(replica: Replica, redis_prefix: str) -> None:
    cache = await replica()
    stale = await cache.stamp(ALICE.session_id, ALICE.user_id)
    cleaner = Redis.from_url(REDIS_TEST_URL)
    try:  # what a restart of a Redis that saves nothing does to our keys
        async for key in cleaner.scan_iter(f"{redis_prefix}*"):
            await cleaner.delete(key)
    finally:
        await cleaner.aclose()
    await cache.put(ALICE, stale)  # its versions (0, 0) equal the fresh ones, but the generation is new
    assert await cache.get(ALICE.session_id) is None
    await fill(cache, ALICE)
    assert await cache.get(ALICE.session_id) == ALICE


@pytest.mark.redis
async def test_a_fill_stamped_longer_ago_than_a_database_read_may_take_is_refused(replica: Replica) -> None:
    cache = await replica(db_timeout=0.01)  # stamps older than 1.01 s are refused
    stale = await cache.stamp(ALICE.session_id, ALICE.user_id)
    await asyncio.sleep(1.2)
    await cache.put(ALICE, stale)
    assert await cache.get(ALICE.session_id) is None


@pytest.mark.redis
async def test_entries_expire_after_the_ttl(replica: Replica) -> None:
    cache = await replica(ttl=0.05)
    await fill(cache, ALICE)
    await asyncio.sleep(0.3)
    assert await cache.get(ALICE.session_id) is None


@pytest.mark.redis
async def test_without_redis_lookups_miss_and_a_forget_returns_only_after_every_copy_expired() -> None:
    client = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    cache = RedisSessionCache(client, "nowhere:", ttl=0.2, db_timeout=0.1)
    try:
        assert await cache.stamp(ALICE.session_id, ALICE.user_id) == ()
        await cache.put(ALICE, ())
        assert await cache.get(ALICE.session_id) is None
        began = time.monotonic()
        await cache.forget([ALICE.session_id])
        assert time.monotonic() - began >= cache.hold  # the hold is what makes acknowledging safe
        assert cache.hold >= 0.2 + 0.1 + 1.0  # the entry's life and the bound on a racing fill
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_an_invalidation_made_while_redis_is_down_lands_when_it_returns(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as server:
        client = Redis(host="127.0.0.1", port=server.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        cache = RedisSessionCache(client, "p:", ttl=30, db_timeout=5, retry_after=0.0)
        try:
            await fill(cache, ALICE)
            assert await cache.get(ALICE.session_id) == ALICE
            server.freeze()  # the entry is still in Redis, which cannot answer
            forgetting = asyncio.create_task(cache.forget([ALICE.session_id]))
            await asyncio.sleep(0.6)
            assert not forgetting.done()  # not acknowledged while a copy could still be served
            assert await cache.get(ALICE.session_id) is None  # and this process reads the database meanwhile
            server.thaw()
            await asyncio.wait_for(forgetting, 10)  # well before the 36.5 s hold: Redis took it
            assert await cache.get(ALICE.session_id) is None
            assert await client.exists("p:session-cache:s:session-a") == 0
        finally:
            await client.aclose()


@pytest.mark.redis
async def test_a_value_under_the_prefix_that_is_not_an_entry_is_a_miss(replica: Replica, redis_prefix: str) -> None:
    cache = await replica()
    writer = Redis.from_url(REDIS_TEST_URL)
    try:
        await writer.set(f"{redis_prefix}session-cache:s:{ALICE.session_id}", b"\xff not json", ex=60)
    finally:
        await writer.aclose()
    assert await cache.get(ALICE.session_id) is None
