"""What the composition root wires for a network database with Redis: the shared cache, counted as hits and misses,
and a dead Redis falls back to the database (every request reads its session, nothing is served stale)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from py_app.auth.models import ClientInfo, SessionState
from py_app.bootstrap import build_edge
from py_app.config import Settings
from py_app.users.models import NewUser
from tests.conftest import free_port
from tests.fakes import (
    FakeTokens,
    FixedClock,
    InMemoryAccountTokens,
    InMemoryAudit,
    InMemorySessionStore,
    InMemoryUserStore,
    PlainHasher,
    RecordingMetrics,
)

NETWORK_DATABASE = "mysql+asyncmy://u:p@127.0.0.1:1/db"  # never reached: the stores are in memory


class CountingSessions(InMemorySessionStore):
    reads = 0

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        self.reads += 1
        return await super().state(session_id, user_id)


async def three_requests_then_logout(settings: Settings) -> tuple[int, RecordingMetrics, bool]:
    """Store reads for three authenticated requests and one after a logout, the metrics, and whether the token
    still worked after the logout."""
    users = InMemoryUserStore()
    sessions = CountingSessions(users.db)
    metrics = RecordingMetrics()
    wired = build_edge(
        settings,
        user_store=users,
        session_store=sessions,
        account_tokens=InMemoryAccountTokens(users.db),
        audit_store=InMemoryAudit(users.db),
        hasher=PlainHasher(),
        tokens=FakeTokens(),
        clock=FixedClock(),
        metrics=metrics,
    )
    async with wired as container:
        made = await container.auth.register(NewUser("ann", "ann@example.com", "correct horse battery"), ClientInfo())
        for _ in range(3):
            principal = await container.auth.authenticate(made.tokens.access_token)
        await container.auth.logout(principal)
        try:
            await container.auth.authenticate(made.tokens.access_token)
        except Exception:  # noqa: BLE001 - Unauthenticated: the session ended
            works = False
        else:
            works = True
    return sessions.reads, metrics, works


@pytest.fixture
async def shared_redis(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[str, str]]:
    yield redis_url, redis_prefix
    client = Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(f"{redis_prefix}*"):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.mark.redis
@pytest.mark.req("SRS-185", "SRS-187", "SDD-187")
async def test_a_network_database_with_redis_reads_sessions_through_the_shared_cache(
    make_settings: Callable[..., Settings], shared_redis: tuple[str, str]
) -> None:
    redis_url, redis_prefix = shared_redis
    settings = make_settings(database_url=NETWORK_DATABASE, redis_url=redis_url, redis_prefix=redis_prefix)
    reads, metrics, works = await three_requests_then_logout(settings)
    assert reads == 2  # the first request filled the cache, the next two were served from Redis; then the logout
    assert (metrics.counts["cache", "session", "miss"], metrics.counts["cache", "session", "hit"]) == (2, 2)
    assert not works


@pytest.mark.req("SRS-187", "SDD-187")
async def test_with_redis_down_every_request_reads_the_database_and_counts_a_miss(
    make_settings: Callable[..., Settings],
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(database_url=NETWORK_DATABASE, redis_url=dead, session_cache_ttl=0.1, db_timeout=0.1)
    reads, metrics, works = await three_requests_then_logout(settings)
    assert reads == 4  # every request, the one after the logout included
    assert (metrics.counts["cache", "session", "miss"], metrics.counts["cache", "session", "hit"]) == (4, 0)
    assert not works
