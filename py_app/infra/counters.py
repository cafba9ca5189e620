"""Adapters of the counters port: Redis (shared by every process), the database (shared, when there is
no Redis), in-process (one process), and a failover that counts in-process while Redis is down.

Every key is hashed first (``core.limits.hashed``): keys carry emails and client addresses.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.core.limits import hashed
from py_app.core.ports import Counters, Metrics, NoMetrics
from py_app.infra.db import MYSQL_TABLE_ARGS, UTCDateTime, metadata, reading, transaction

logger = logging.getLogger("arcana.limits")
MAX_IN_PROCESS = 100_000

rate_counters = sa.Table(
    "rate_counters",
    metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("window_ends", UTCDateTime, nullable=False),
    sa.Index("ix_rate_counters_window_ends", "window_ends"),
    **MYSQL_TABLE_ARGS,
)


class CounterStore(Counters, Protocol):
    """The database counters as another tier serves them: the counters port and the pruning of old windows."""

    async def prune(self, now: datetime) -> int:
        """Forget windows that ended before ``now``; how many went."""


class InProcessCounters:
    """Counters of this process only: right when it is the only one counting."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, datetime]] = {}

    async def hit(self, key: str, window: int, now: datetime) -> tuple[int, int]:
        key = hashed(key)
        count, ends = self._windows.get(key, (0, now))
        if ends <= now:
            count, ends = 0, now + timedelta(seconds=window)
        self._windows[key] = (count + 1, ends)
        if len(self._windows) > MAX_IN_PROCESS:
            self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        return count + 1, _left(ends, now)

    async def release(self, key: str) -> None:
        key = hashed(key)
        if key in self._windows:
            count, ends = self._windows[key]
            self._windows[key] = (max(count - 1, 0), ends)

    async def reset(self, key: str) -> None:
        self._windows.pop(hashed(key), None)

    async def hold(self, key: str, seconds: int, now: datetime) -> None:
        self._windows[hashed(key)] = (1, now + timedelta(seconds=seconds))

    async def held(self, key: str, now: datetime) -> int:
        _, ends = self._windows.get(hashed(key), (0, now))
        return _left(ends, now) if ends > now else 0


class SqlCounters:
    """Counters in the service's database: shared by every worker and replica, one statement each."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def hit(self, key: str, window: int, now: datetime) -> tuple[int, int]:
        key, ends = hashed(key), now + timedelta(seconds=window)
        expired = rate_counters.c.window_ends <= now
        async with transaction(self._engine) as connection:
            if connection.dialect.name == "mysql":
                on_mysql = mysql.insert(rate_counters).values(key=key, count=1, window_ends=ends)
                # MySQL assigns left to right: count must read the old window_ends.
                upsert: Any = on_mysql.on_duplicate_key_update(
                    count=sa.case((expired, 1), else_=rate_counters.c.count + 1),
                    window_ends=sa.case((expired, on_mysql.inserted.window_ends), else_=rate_counters.c.window_ends),
                )
            else:
                fresh = sqlite.insert(rate_counters).values(key=key, count=1, window_ends=ends)
                upsert = fresh.on_conflict_do_update(
                    index_elements=[rate_counters.c.key],
                    set_={
                        "count": sa.case((expired, 1), else_=rate_counters.c.count + 1),
                        "window_ends": sa.case(
                            (expired, fresh.excluded.window_ends), else_=rate_counters.c.window_ends
                        ),
                    },
                )
            await connection.execute(upsert)
            query = sa.select(rate_counters).where(rate_counters.c.key == key)
            row = (await connection.execute(query)).mappings().one()
        return int(row["count"]), _left(row["window_ends"], now)

    async def release(self, key: str) -> None:
        async with transaction(self._engine) as connection:
            await connection.execute(
                rate_counters.update()
                .where(rate_counters.c.key == hashed(key), rate_counters.c.count > 0)
                .values(count=rate_counters.c.count - 1)
            )

    async def reset(self, key: str) -> None:
        async with transaction(self._engine) as connection:
            await connection.execute(rate_counters.delete().where(rate_counters.c.key == hashed(key)))

    async def hold(self, key: str, seconds: int, now: datetime) -> None:
        key, ends = hashed(key), now + timedelta(seconds=seconds)
        async with transaction(self._engine) as connection:
            await connection.execute(rate_counters.delete().where(rate_counters.c.key == key))
            await connection.execute(rate_counters.insert().values(key=key, count=1, window_ends=ends))

    async def held(self, key: str, now: datetime) -> int:
        async with reading(self._engine) as connection:
            query = sa.select(rate_counters.c.window_ends).where(rate_counters.c.key == hashed(key))
            ends = (await connection.execute(query)).scalar_one_or_none()
        return _left(ends, now) if ends is not None and ends > now else 0

    async def prune(self, now: datetime) -> int:
        async with transaction(self._engine) as connection:
            result = await connection.execute(rate_counters.delete().where(rate_counters.c.window_ends < now))
            return int(result.rowcount)


# One window per key: INCR, the expiry set on the first hit (and repaired if a key lost it), the TTL back.
_HIT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""
_RELEASE = "if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end return 0"


class RedisCounters:
    """Counters in Redis: atomic across every process and replica sharing it."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._hit = client.register_script(_HIT)
        self._release = client.register_script(_RELEASE)

    async def hit(self, key: str, window: int, now: datetime) -> tuple[int, int]:
        count, ttl = await self._hit(keys=[self._key(key)], args=[window])
        return int(count), max(int(ttl), 1)

    async def release(self, key: str) -> None:
        await self._release(keys=[self._key(key)])

    async def reset(self, key: str) -> None:
        await self._client.delete(self._key(key))

    async def hold(self, key: str, seconds: int, now: datetime) -> None:
        await self._client.set(self._key(key), 1, ex=seconds)

    async def held(self, key: str, now: datetime) -> int:
        return max(int(await self._client.ttl(self._key(key))), 0)

    def _key(self, key: str) -> str:
        return f"{self._prefix}limits:{hashed(key)}"


class FailoverCounters:
    """Redis first; while it fails, this process's own counters, said once a minute in the log and on every
    call in the metrics (``arcana_counters_fallback_total``, and ``arcana_counters_degraded`` until Redis
    answers again)."""

    def __init__(self, primary: Counters, fallback: Counters, metrics: Metrics | None = None) -> None:
        self._primary = primary
        self._fallback = fallback
        self._metrics = metrics or NoMetrics()
        self._said = -math.inf
        self._degraded = False
        self.failovers = 0  # how many calls were counted in-process

    async def hit(self, key: str, window: int, now: datetime) -> tuple[int, int]:
        try:
            counted = await self._primary.hit(key, window, now)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.hit(key, window, now)
        self._answered()
        return counted

    async def release(self, key: str) -> None:
        try:
            await self._primary.release(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            await self._fallback.release(key)
        else:
            self._answered()

    async def reset(self, key: str) -> None:
        try:
            await self._primary.reset(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
        else:
            self._answered()
        await self._fallback.reset(key)

    async def hold(self, key: str, seconds: int, now: datetime) -> None:
        try:
            await self._primary.hold(key, seconds, now)
        except (RedisError, OSError) as exc:
            self._failed(exc)
        else:
            self._answered()
        await self._fallback.hold(key, seconds, now)  # kept here too: the lock outlives a Redis restart

    async def held(self, key: str, now: datetime) -> int:
        try:
            primary = await self._primary.held(key, now)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            primary = 0
        else:
            self._answered()
        return max(primary, await self._fallback.held(key, now))

    def _answered(self) -> None:
        if self._degraded:
            self._degraded = False
            self._metrics.counters_fallback(False)
            logger.info("redis answers again: rate limits and lockouts count there")

    def _failed(self, exc: BaseException) -> None:
        self.failovers += 1
        self._degraded = True
        self._metrics.counters_fallback(True)
        if time.monotonic() - self._said >= 60:
            self._said = time.monotonic()
            logger.warning(
                "redis unavailable: rate limits and lockouts count in this process only until it is back",
                extra={"error": type(exc).__name__},
            )


def _left(ends: datetime, now: datetime) -> int:
    return max(math.ceil((ends - now).total_seconds()), 1)
