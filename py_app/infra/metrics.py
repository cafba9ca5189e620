"""Decorators that record metrics for other ports (password hashing, the session cache) and the database
pool's events; the Prometheus adapter is ``infra/prometheus.py``, the no-op one ``core.ports.NoMetrics``."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.auth.ports import SessionCache, Stamp
from py_app.core.identity import Principal
from py_app.core.ports import Metrics, PasswordHasher
from py_app.infra import db


class MeteredHasher:
    """A password hasher whose every hash and verify is timed (the wait for a hashing slot included:
    that wait is what a caller feels when logins pile up)."""

    def __init__(self, hasher: PasswordHasher, metrics: Metrics) -> None:
        self._hasher = hasher
        self._metrics = metrics

    async def hash(self, password: str) -> str:
        started = time.perf_counter()
        try:
            return await self._hasher.hash(password)
        finally:
            self._metrics.password_hash("hash", time.perf_counter() - started)

    async def verify(self, encoded: str, password: str) -> bool:
        started = time.perf_counter()
        try:
            return await self._hasher.verify(encoded, password)
        finally:
            self._metrics.password_hash("verify", time.perf_counter() - started)

    def needs_rehash(self, encoded: str) -> bool:
        return self._hasher.needs_rehash(encoded)


class MeteredSessionCache:
    """A session cache whose lookups are counted as hits and misses."""

    def __init__(self, cache: SessionCache, metrics: Metrics, name: str = "session") -> None:
        self._cache = cache
        self._metrics = metrics
        self._name = name

    async def get(self, session_id: str) -> Principal | None:
        found = await self._cache.get(session_id)
        self._metrics.cache_lookup(self._name, found is not None)
        return found

    async def stamp(self, session_id: str, user_id: str) -> Stamp:
        return await self._cache.stamp(session_id, user_id)

    async def put(self, principal: Principal, stamp: Stamp) -> None:
        await self._cache.put(principal, stamp)

    async def forget(self, session_ids: list[str]) -> None:
        await self._cache.forget(session_ids)

    async def forget_user(self, user_id: str) -> None:
        await self._cache.forget_user(user_id)


_COUNTED = "arcana_counted_out"  # in a pool record's record_info while the gauge counts it


def observe_pool(engine: AsyncEngine, metrics: Metrics) -> None:
    """Follow the engine's pools (its own, and on MySQL the single-read pool beside it): their size now, and
    every connection handed out and given back."""

    # A connection whose checkout failed (its ping failed, and so did the reconnect) is checked in with no
    # checkout event before it: only what was counted out is counted back in, so the gauge never drifts.
    def checked_out(_connection: Any, record: Any, _proxy: Any) -> None:
        if not record.record_info.get(_COUNTED):  # a reconnect on checkout dispatches checkout again
            record.record_info[_COUNTED] = True
            metrics.pool_checked_out(1)

    def checked_in(_connection: Any, record: Any) -> None:
        if record is not None and record.record_info.pop(_COUNTED, False):
            metrics.pool_checked_out(-1)

    sizes = [getattr(observed.sync_engine.pool, "size", None) for observed in db.pools(engine)]
    if all(callable(size) for size in sizes):
        metrics.pool_size(sum(int(size()) for size in sizes if callable(size)))
    for observed in db.pools(engine):
        event.listen(observed.sync_engine, "checkout", checked_out)
        event.listen(observed.sync_engine, "checkin", checked_in)
