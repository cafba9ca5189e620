"""Session caches: in-process (one process sees every change) or none. A Redis adapter comes with the hot path."""

from __future__ import annotations

import time

from py_app.auth.ports import Stamp
from py_app.core.identity import Principal


class InProcessSessionCache:
    """Live sessions seen in the last ``ttl`` seconds. Only correct when one process serves all traffic,
    because a revocation can invalidate only the cache of the process that performed it."""

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._generation = 0

    async def get(self, session_id: str) -> Principal | None:
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        principal, expires = entry
        if time.monotonic() >= expires:
            del self._entries[session_id]
            return None
        return principal

    async def stamp(self, session_id: str, user_id: str) -> Stamp:
        return (self._generation, 0)

    async def put(self, principal: Principal, stamp: Stamp) -> None:
        if stamp != (self._generation, 0):
            return  # something was forgotten while the caller read the database: its view may be stale
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # crude but bounded: the cache only saves reads
        self._entries[principal.session_id] = (principal, time.monotonic() + self._ttl)

    async def forget(self, session_ids: list[str]) -> None:
        self._generation += 1
        for session_id in session_ids:
            self._entries.pop(session_id, None)

    async def forget_user(self, user_id: str) -> None:
        self._generation += 1
        for session_id in [sid for sid, (p, _) in self._entries.items() if p.user_id == user_id]:
            del self._entries[session_id]


class NoSessionCache:
    """Every authenticated request reads its session: the choice when processes cannot share invalidation."""

    async def get(self, session_id: str) -> Principal | None:
        return None

    async def stamp(self, session_id: str, user_id: str) -> Stamp:
        return (0, 0)

    async def put(self, principal: Principal, stamp: Stamp) -> None:
        return None

    async def forget(self, session_ids: list[str]) -> None:
        return None

    async def forget_user(self, user_id: str) -> None:
        return None
