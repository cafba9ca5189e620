"""``RedisUserStore`` on real Redis and a real MariaDB database: two stores on two clients stand for two replicas.

A record read from the database is shared without its password hash; a read that raced a write, or that took
longer than the bound on a racing read, is not kept; with Redis gone (killed, frozen, or out of one replica's
reach) reads go to the database, a write is acknowledged only once no old copy can be served, and once Redis is
back the next read is the new record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.infra import migrations
from py_app.infra.cache import RedisCacheLink, RedisUserStore
from py_app.infra.db import create_engine
from py_app.infra.redis import create_redis
from py_app.users.models import PasswordChange, User, UserChanges
from py_app.users.repositories import SqlUserStore
from tests.conftest import free_port
from tests.fakes import RecordingMetrics
from tests.faults.private import private_redis
from tests.ports.conftest import make_user

pytestmark = [pytest.mark.mariadb, pytest.mark.redis]
NOW = datetime(2026, 12, 1, tzinfo=UTC)


class WatchedStore(SqlUserStore):
    """The SQL store, counting the reads by id that reach the database; ``after_read`` runs once a read has
    fetched its row and before it returns (what a write landing during a read looks like)."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.reads = 0
        self.after_read: Callable[[], Awaitable[None]] | None = None

    async def get(self, user_id: str) -> User | None:
        self.reads += 1
        found = await super().get(user_id)
        if self.after_read is not None:
            hook, self.after_read = self.after_read, None
            await hook()
        return found


Replica = Callable[..., RedisUserStore]


@pytest.fixture
async def engine(mariadb_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(migrations.upgrade, mariadb_url)
    made = create_engine(mariadb_url)
    yield made
    await made.dispose()


@pytest.fixture
async def replicas(engine: AsyncEngine, redis_url: str, redis_prefix: str) -> AsyncIterator[Replica]:
    """``make(url=...)``: a RedisUserStore over its own WatchedStore and Redis client (another replica)."""
    clients: list[Redis] = []

    def make(url: str = redis_url, ttl: float = 60.0, db_timeout: float = 5.0) -> RedisUserStore:
        client = create_redis(url, timeout=0.3)
        clients.append(client)
        link = RedisCacheLink(client, redis_prefix, ttl, db_timeout, retry_after=0.0)
        return RedisUserStore(WatchedStore(engine), link, RecordingMetrics())

    yield make
    shared = Redis.from_url(redis_url)
    async for key in shared.scan_iter(f"{redis_prefix}*"):
        await shared.delete(key)
    await shared.aclose()
    for client in clients:
        await client.aclose()


def watched(store: RedisUserStore) -> WatchedStore:
    inner = store._store  # noqa: SLF001 - the test's own store, to count its reads
    assert isinstance(inner, WatchedStore)
    return inner


def counts(store: RedisUserStore) -> tuple[int, int]:
    metrics = store._metrics  # noqa: SLF001 - the test's own metrics
    assert isinstance(metrics, RecordingMetrics)
    return metrics.counts["cache", "user", "miss"], metrics.counts["cache", "user", "hit"]


async def an_account(store: RedisUserStore) -> User:
    user = make_user(password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$secret-part-of-the-hash")
    await store.add(user)
    return user


async def read(store: RedisUserStore, user_id: str) -> User:
    found = await store.get(user_id)
    assert found is not None
    return found


def shown(user: User) -> User:
    """What the cached read returns for ``user``: every field but the hash."""
    return replace(user, password_hash="")


@pytest.mark.req("SRS-262", "SRS-263", "SDD-260")
async def test_a_record_read_once_is_served_by_every_replica_and_no_hash_is_at_rest_in_redis(
    replicas: Replica, redis_url: str, redis_prefix: str
) -> None:
    a, b = replicas(), replicas()
    user = await an_account(a)
    assert await a.get(user.id) == shown(user)
    assert await b.get(user.id) == shown(user)
    assert await b.get(user.id) == shown(user)
    assert (watched(a).reads, watched(b).reads) == (1, 0)  # B never read the database
    assert (counts(a), counts(b)) == ((1, 0), (0, 2))
    client = Redis.from_url(redis_url)
    try:
        raw = await client.get(f"{redis_prefix}session-cache:ur:{user.id}")
    finally:
        await client.aclose()
    assert raw is not None
    assert user.username.encode() in raw
    assert b"argon2" not in raw
    assert b"secret-part-of-the-hash" not in raw
    assert await a.credentials(user.id) == user  # the password checks read the hash from the database


@pytest.mark.req("SDD-260")
async def test_a_read_that_a_write_overtook_is_answered_but_not_kept(replicas: Replica) -> None:
    a, b = replicas(), replicas()
    user = await an_account(a)

    async def renamed_meanwhile() -> None:  # B's write commits and is acknowledged while A's read is under way
        await b.update(user.id, UserChanges(first_name="Renamed"), NOW)

    watched(a).after_read = renamed_meanwhile
    assert (await read(a, user.id)).first_name == ""  # A's read began before the write: its answer is the old one
    assert (await read(b, user.id)).first_name == "Renamed"  # but it was not put: no replica serves it afterwards
    assert watched(b).reads == 1  # B found nothing cached and read the database
    assert (await read(a, user.id)).first_name == "Renamed"


@pytest.mark.req("SDD-260")
async def test_a_read_slower_than_the_bound_on_a_racing_read_is_not_kept(replicas: Replica) -> None:
    a = replicas(db_timeout=0.05)  # a stamp older than 1.05 s is refused

    async def slow() -> None:
        await asyncio.sleep(1.3)

    user = await an_account(a)
    watched(a).after_read = slow
    assert await a.get(user.id) == shown(user)
    assert await a.get(user.id) == shown(user)
    assert watched(a).reads == 2  # the slow read's put was refused; the second read was kept
    assert await a.get(user.id) == shown(user)
    assert watched(a).reads == 2


@pytest.mark.req("SRS-261", "SDD-262")
async def test_with_redis_killed_reads_go_to_the_database_and_after_its_restart_none_is_stale(
    replicas: Replica, tmp_path: Path
) -> None:
    with private_redis(tmp_path / "redis") as server:
        url = f"redis://127.0.0.1:{server.port}/0"
        a, b = replicas(url, ttl=0.3, db_timeout=0.1), replicas(url, ttl=0.3, db_timeout=0.1)
        user = await an_account(a)
        await b.get(user.id)
        assert await b.get(user.id) == shown(user)
        assert counts(b) == (1, 1)  # the second read was served from Redis
        server.kill()
        began = time.monotonic()
        await a.update(user.id, UserChanges(first_name="Renamed"), NOW)
        assert time.monotonic() - began >= a._link.hold  # noqa: SLF001 - held: no replica could be told
        assert (await read(b, user.id)).first_name == "Renamed"  # from the database, counted as a miss
        assert counts(b) == (2, 1)
        server.restart()  # empty
        assert [(await read(b, user.id)).first_name for _ in range(2)] == ["Renamed"] * 2
        assert (await read(a, user.id)).first_name == "Renamed"


@pytest.mark.req("SRS-261", "SDD-262")
async def test_a_write_made_while_redis_hangs_is_held_and_redis_serves_no_old_copy_when_it_answers_again(
    replicas: Replica, tmp_path: Path
) -> None:
    with private_redis(tmp_path / "redis") as server:
        url = f"redis://127.0.0.1:{server.port}/0"
        a, b = replicas(url, ttl=0.5, db_timeout=0.1), replicas(url, ttl=0.5, db_timeout=0.1)
        user = await an_account(a)
        await b.get(user.id)  # cached, with its entry still in Redis while Redis cannot answer
        server.freeze()
        try:
            began = time.monotonic()
            change = PasswordChange(
                user_id=user.id, expected_hash=user.password_hash, new_hash="$argon2id$new", now=NOW
            )
            assert await a.change_password(change)
            assert time.monotonic() - began >= a._link.hold  # noqa: SLF001
            assert (await read(b, user.id)).updated_at == NOW  # read from the database meanwhile
        finally:
            server.thaw()
        assert (await read(b, user.id)).updated_at == NOW  # the old copy had expired: nothing stale comes back
        assert (await read(b, user.id)).updated_at == NOW


@pytest.mark.req("SRS-261", "SDD-262")
async def test_a_replica_cut_off_from_redis_acknowledges_a_write_only_once_the_others_copy_has_expired(
    replicas: Replica,
) -> None:
    b = replicas(ttl=2.0, db_timeout=0.1)  # reaches the shared Redis
    a = replicas(f"redis://127.0.0.1:{free_port()}/0", ttl=2.0, db_timeout=0.1)  # cannot
    user = await an_account(a)
    await b.get(user.id)
    writing = asyncio.create_task(a.update(user.id, UserChanges(first_name="Renamed"), NOW))
    began = time.monotonic()
    await asyncio.sleep(0.3)
    assert not writing.done()
    assert (await read(b, user.id)).first_name == ""  # B still holds the old copy: acknowledging now would be wrong
    await writing
    assert time.monotonic() - began >= a._link.hold - 0.3  # noqa: SLF001
    assert (await read(b, user.id)).first_name == "Renamed"  # from the next request on, B reads the new record
