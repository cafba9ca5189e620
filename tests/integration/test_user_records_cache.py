"""User records shared in Redis on a network database: two containers built by the composition root (two replicas,
each with its own engine and Redis clients) on one real MariaDB database and one real Redis prefix. Replica B
serves an account's record from Redis (its hit counter moves); then every kind of write of the account's row is
acknowledged by replica A, and B's very next read is what the database holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from py_app.auth.models import AccountToken, ClientInfo, TokenPurpose, token_digest
from py_app.auth.repositories import SqlAccountTokenStore
from py_app.bootstrap import Container, build_edge
from py_app.config import Settings
from py_app.core.errors import NotFound
from py_app.core.identity import Principal
from py_app.infra import migrations
from py_app.infra.db import create_engine
from py_app.users.models import NewUser, Role, Status, User, UserChanges
from py_app.users.repositories import SqlUserStore
from tests.conftest import free_port
from tests.fakes import PlainHasher, RecordingMetrics

pytestmark = [pytest.mark.mariadb, pytest.mark.redis, pytest.mark.req("SRS-260", "SRS-263", "SDD-261", "SDD-263")]
PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse entirely 42"
ADMIN = Principal(str(uuid.uuid4()), "admin-session", Role.ADMIN.value)


@dataclass
class Replica:
    container: Container
    metrics: RecordingMetrics

    async def read(self, user_id: str) -> User:
        return await self.container.users.get(ADMIN, user_id)

    def hits(self) -> int:
        return self.metrics.counts["cache", "user", "hit"]


@dataclass
class Pair:
    a: Replica
    b: Replica
    database: SqlUserStore
    tokens: SqlAccountTokenStore

    async def stored(self, user_id: str) -> User | None:
        """The row as the database holds it, as a read of the point query shows it (no hash)."""
        found = await self.database.get(user_id)
        return None if found is None else replace(found, password_hash="")


@pytest.fixture
async def pair(
    make_settings: Callable[..., Settings], mariadb_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Pair]:
    await asyncio.to_thread(migrations.upgrade, mariadb_url)
    settings = make_settings(
        database_url=mariadb_url, redis_url=redis_url, redis_prefix=redis_prefix, session_cache_ttl=60
    )
    engine = create_engine(mariadb_url)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        replicas = []
        for _ in range(2):
            metrics = RecordingMetrics()
            container = build_edge(settings, hasher=PlainHasher(), metrics=metrics)
            stack.push_async_callback(container.aclose)
            replicas.append(Replica(container, metrics))
        yield Pair(replicas[0], replicas[1], SqlUserStore(engine), SqlAccountTokenStore(engine))
        client = Redis.from_url(redis_url)
        async for key in client.scan_iter(f"{redis_prefix}*"):
            await client.delete(key)
        await client.aclose()


async def cached_on_b(pair: Pair) -> User:
    """A new account whose record replica B serves from Redis."""
    name = f"u{uuid.uuid4().hex[:10]}"
    user = await pair.a.container.users.create(NewUser(name, f"{name}@example.com", PASSWORD))
    before = pair.b.hits()
    assert await pair.b.read(user.id) == await pair.stored(user.id)
    assert await pair.b.read(user.id) == await pair.stored(user.id)
    assert pair.b.hits() == before + 1  # the second read came from Redis
    return user


async def issued(pair: Pair, user: User, purpose: TokenPurpose) -> str:
    """A mailed token of ``purpose`` for ``user`` (stored as the relay would, its raw form returned)."""
    raw = f"test-token-{uuid.uuid4().hex}"
    at = datetime.now(UTC)  # the containers run on the real clock
    token = AccountToken(
        id=str(uuid.uuid4()),
        digest=token_digest(raw),
        purpose=purpose,
        user_id=user.id,
        email=user.email,
        created_at=at,
        expires_at=at + timedelta(hours=1),
    )
    await pair.tokens.issue(token)
    return raw


Write = Callable[[Pair, User], Awaitable[None]]


async def rename(pair: Pair, user: User) -> None:
    await pair.a.container.users.update(ADMIN, user.id, UserChanges(first_name="Renamed"))


async def new_email(pair: Pair, user: User) -> None:
    await pair.a.container.users.update(ADMIN, user.id, UserChanges(email=f"new-{user.email}"))


async def promote(pair: Pair, user: User) -> None:
    await pair.a.container.users.set_role(ADMIN, user.id, Role.ADMIN)


async def suspend(pair: Pair, user: User) -> None:
    await pair.a.container.users.set_status(ADMIN, user.id, Status.SUSPENDED)


async def verify_by_admin(pair: Pair, user: User) -> None:
    await pair.a.container.users.verify(ADMIN, user.id)


async def change_password(pair: Pair, user: User) -> None:
    own = Principal(user.id, "own-session", Role.USER.value)
    await pair.a.container.users.change_password(own, user.id, PASSWORD, NEW_PASSWORD)


async def log_in(pair: Pair, user: User) -> None:
    await pair.a.container.auth.login(user.username, PASSWORD, ClientInfo())


async def reset_password(pair: Pair, user: User) -> None:
    token = await issued(pair, user, TokenPurpose.PASSWORD_RESET)
    await pair.a.container.recovery.reset_password(token, NEW_PASSWORD, ClientInfo())


async def verify_email(pair: Pair, user: User) -> None:
    token = await issued(pair, user, TokenPurpose.EMAIL_VERIFY)
    await pair.a.container.recovery.verify_email(token, ClientInfo())


WRITES = [rename, new_email, promote, suspend, verify_by_admin, change_password, log_in, reset_password, verify_email]


@pytest.mark.parametrize("write", WRITES, ids=lambda f: f.__name__)
async def test_after_any_write_acknowledged_by_one_replica_the_other_reads_the_new_record(
    pair: Pair, write: Write
) -> None:
    user = await cached_on_b(pair)
    cached = await pair.b.read(user.id)
    await write(pair, user)
    now = await pair.stored(user.id)
    assert now is not None
    assert now != cached  # the write changed what a read shows (at least its updated_at or last login)
    assert await pair.b.read(user.id) == now
    assert await pair.a.read(user.id) == now


async def test_after_a_deletion_acknowledged_by_one_replica_the_other_finds_no_such_user(pair: Pair) -> None:
    user = await cached_on_b(pair)
    await pair.a.container.users.delete(ADMIN, user.id)
    with pytest.raises(NotFound):
        await pair.b.read(user.id)


async def test_me_is_served_from_the_shared_records_and_sees_a_change_made_on_the_other_replica(pair: Pair) -> None:
    user = await cached_on_b(pair)
    own = Principal(user.id, "own-session", Role.USER.value)
    before = pair.b.hits()
    assert await pair.b.container.auth.me(own) == await pair.stored(user.id)
    assert pair.b.hits() == before + 1
    await rename(pair, user)
    assert (await pair.b.container.auth.me(own)).first_name == "Renamed"


@pytest.mark.req("SRS-261")
async def test_with_redis_unreachable_a_role_change_is_held_once_and_every_read_goes_to_the_database(
    make_settings: Callable[..., Settings], mariadb_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(migrations.upgrade, mariadb_url)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(database_url=mariadb_url, redis_url=dead, session_cache_ttl=0.3, db_timeout=0.1)
    hold = 0.3 + 0.1 + 1.0 + 0.5
    metrics = RecordingMetrics()
    caplog.set_level(logging.WARNING, logger="arcana.cache")
    async with build_edge(settings, hasher=PlainHasher(), metrics=metrics) as container:
        user = await container.users.create(NewUser("held", "held@example.com", PASSWORD))
        assert (await container.users.get(ADMIN, user.id)).role is Role.USER
        began = time.monotonic()
        await container.users.set_role(ADMIN, user.id, Role.GUEST)
        took = time.monotonic() - began
        assert (await container.users.get(ADMIN, user.id)).role is Role.GUEST
    assert took >= hold
    # One hold: the store forgot the account, the service did not again (each hold that ran out says so once).
    held = [r for r in caplog.records if r.getMessage().startswith("cache invalidation did not reach redis")]
    assert len(held) == 1, [r.getMessage() for r in caplog.records]
    assert (metrics.counts["cache", "user", "miss"], metrics.counts["cache", "user", "hit"]) == (2, 0)


@pytest.mark.req("SRS-261")
async def test_with_redis_unreachable_a_login_is_not_held_for_its_last_login_time(
    make_settings: Callable[..., Settings], mariadb_url: str
) -> None:
    """A login's record changes only the last-login time: it waits for Redis a moment (LOGIN_FORGET_WAIT), not
    the hold, which here is 10.5 s; the invalidation goes on behind it, and the record is read from the database."""
    await asyncio.to_thread(migrations.upgrade, mariadb_url)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(database_url=mariadb_url, redis_url=dead, session_cache_ttl=8.0, db_timeout=1.0)
    async with build_edge(settings, hasher=PlainHasher()) as container:
        user = await container.users.create(NewUser("quick", "quick@example.com", PASSWORD))
        began = time.monotonic()
        await container.auth.login(user.username, PASSWORD, ClientInfo())
        took = time.monotonic() - began
        logged = await container.users.get(ADMIN, user.id)
    assert took < 5.0, took  # half the hold: far more than the wait, far less than the hold
    assert logged.last_login_at is not None
