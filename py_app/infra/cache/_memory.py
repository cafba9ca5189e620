"""The in-process caches: sessions (correct when every change reaches this process, or stamped with the
database's commit counter) and the user records where the database counts its commits (``CachedUserStore``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from py_app.auth.ports import Stamp
from py_app.core.identity import Principal
from py_app.core.ports import Metrics, NoMetrics
from py_app.infra.cache._records import UserRecordsCache
from py_app.users.models import User
from py_app.users.ports import UserStore


def _unchanging() -> int:
    return 0


class InProcessSessionCache:
    """Live sessions seen in the last ``ttl`` seconds. Without ``changes``, only correct when one process
    serves all traffic, because a revocation can invalidate only the cache of the process that performed
    it; with it, an entry is served only while the database has not changed since the entry was read."""

    def __init__(self, ttl: float, max_entries: int = 100_000, changes: Callable[[], int] = _unchanging) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._changes = changes
        self._entries: dict[str, tuple[Principal, float, int]] = {}
        self._session_versions: dict[str, int] = {}
        self._user_versions: dict[str, int] = {}
        self._epoch = 0  # advances when the tables are cleared, so a version that restarts at 0 is still new

    async def get(self, session_id: str) -> Principal | None:
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        principal, expires, read_at = entry
        if time.monotonic() >= expires or read_at != self._changes():
            del self._entries[session_id]
            return None
        return principal

    async def stamp(self, session_id: str, user_id: str) -> Stamp:
        versions = (self._session_versions.get(session_id, 0), self._user_versions.get(user_id, 0))
        return (self._epoch, *versions, self._changes())

    async def put(self, principal: Principal, stamp: Stamp) -> None:
        if stamp != await self.stamp(principal.session_id, principal.user_id):
            return  # forgotten, or the database changed, while the caller read it: its view may be stale
        if len(self._entries) >= self._max_entries:
            self._clear()  # crude but bounded: the cache only saves reads
        self._entries[principal.session_id] = (principal, time.monotonic() + self._ttl, stamp[-1])

    async def forget(self, session_ids: list[str]) -> None:
        for session_id in session_ids:
            self._session_versions[session_id] = self._session_versions.get(session_id, 0) + 1
            self._entries.pop(session_id, None)
        self._bound_versions()

    async def forget_user(self, user_id: str) -> None:
        self._user_versions[user_id] = self._user_versions.get(user_id, 0) + 1
        for session_id in [sid for sid, (p, _, _) in self._entries.items() if p.user_id == user_id]:
            del self._entries[session_id]
        self._bound_versions()

    def _bound_versions(self) -> None:
        if len(self._session_versions) + len(self._user_versions) > self._max_entries:
            self._clear()

    def _clear(self) -> None:
        self._entries.clear()
        self._session_versions.clear()
        self._user_versions.clear()
        self._epoch += 1


class NoSessionCache:
    """Every authenticated request reads its session: the choice when processes cannot share invalidation."""

    async def get(self, session_id: str) -> Principal | None:
        return None

    async def stamp(self, session_id: str, user_id: str) -> Stamp:
        return ()

    async def put(self, principal: Principal, stamp: Stamp) -> None:
        return None

    async def forget(self, session_ids: list[str]) -> None:
        return None

    async def forget_user(self, user_id: str) -> None:
        return None


class CachedUserStore(UserRecordsCache):
    """A ``UserStore`` whose ``get`` (a point query's read, and ``me``'s) is served from memory while the
    database has not changed since the record was read; everything else goes to ``store``.

    ``changes`` is a counter that moves whenever any connection of any process commits to the database
    (SQLite's ``PRAGMA data_version``, ``infra.db.ChangeCounter``): the composition root builds this store
    only where there is one. An entry is served only while the counter still reads what it read before the
    record was fetched, so no write anywhere (an update, a login's record, a deletion, through any worker
    or the CLI) can be acknowledged and then read past: the acknowledgement reached the reader in a later
    loop iteration than the commit, and the counter read in that iteration has moved. A read that raced
    a commit is not kept. Writes through this store also drop the entry at once.
    """

    def __init__(
        self,
        store: UserStore,
        ttl: float,
        changes: Callable[[], int],
        metrics: Metrics | None = None,
        max_entries: int = 100_000,
    ) -> None:
        super().__init__(store)
        self._ttl = ttl
        self._changes = changes
        self._metrics = metrics or NoMetrics()
        self._max_entries = max_entries
        self._entries: dict[str, tuple[User, float, int]] = {}

    async def get(self, user_id: str) -> User | None:
        entry = self._entries.get(user_id)
        if entry is not None:
            user, expires, read_at = entry
            if read_at == self._changes() and time.monotonic() < expires:
                self._metrics.cache_lookup("user", True)
                return user
            del self._entries[user_id]
        self._metrics.cache_lookup("user", False)
        before = self._changes()
        found = await self._store.get(user_id)
        if found is not None and self._changes() == before:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # crude but bounded: the cache only saves reads
            self._entries[user_id] = (found, time.monotonic() + self._ttl, before)
        return found

    async def _forgotten(self, user_id: str) -> None:
        self._entries.pop(user_id, None)
