"""Session caches: in-process (when every change reaches it), shared in Redis (replicas), or none; and the
user records' cache (``CachedUserStore``), in-process where the database counts its commits.

Invalidation is versioned per session and per user: ``stamp`` reads both versions before the
database read, every ``forget`` advances them, and ``put`` refuses a result stamped before an
advance. A logout therefore voids only the puts racing that one session, not everyone's.

With ``changes`` (a counter that moves whenever any process commits to the database, e.g. SQLite's
``PRAGMA data_version``), an entry also dies when the database has changed since it was read, so
the changes made by other workers or processes on the same database file reach this cache too.

``RedisSessionCache`` keeps the same versions in Redis, so every replica sharing it sees every
invalidation; why it is never stale, a Redis outage or partition included, is in docs/ARCHITECTURE.md
("The shared session cache").
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from py_app.auth.ports import Stamp
from py_app.core.effects import NO_EFFECTS, Effects
from py_app.core.identity import Principal
from py_app.core.ports import Metrics, NoMetrics
from py_app.users.models import PasswordChange, User, UserChanges, UserQuery
from py_app.users.ports import UserStore

logger = logging.getLogger("arcana.cache")


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


# The generation names one life of the Redis data set: made on first use, lost with everything else when
# Redis restarts empty, so a stamp taken before a restart can never match the versions after it. It expires
# after a day (a new one only refuses the puts in flight), so an abandoned prefix leaves nothing behind.
_STAMP = """
local g = redis.call('GET', KEYS[1])
if not g then g = ARGV[1]; redis.call('SET', KEYS[1], g, 'EX', 86400) end
local t = redis.call('TIME')
return {g, redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3]) or '0', t[1], t[2]}
"""
# Refused unless nothing moved since the stamp and the stamp is younger than the bound on a racing read
# (measured on Redis's own clock, so a put delayed in the network is judged when it runs).
_PUT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then return 0 end
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[3] then return 0 end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[4]) > tonumber(ARGV[5]) then return 0 end
redis.call('SET', KEYS[4], ARGV[6], 'PX', ARGV[7])
redis.call('SADD', KEYS[5], ARGV[8])
redis.call('PEXPIRE', KEYS[5], ARGV[7])
return 1
"""
# KEYS: version, entry, version, entry ... of each session.
_FORGET = """
for i = 1, #KEYS, 2 do
  redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
  redis.call('DEL', KEYS[i + 1])
end
return 1
"""
# KEYS: the user's version and the set of its cached sessions; ARGV[2]: the prefix of entry keys.
_FORGET_USER = """
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', ARGV[2] .. sid) end
redis.call('DEL', KEYS[2])
return 1
"""
_FAILURES = (RedisError, OSError, TimeoutError)


class RedisSessionCache:
    """Live sessions shared by every process and replica using one Redis and prefix.

    Versions and entries live in Redis and change only by Lua scripts, so ``put`` is refused atomically
    when the session's or the user's version moved (or Redis restarted) since ``stamp``. When Redis fails,
    lookups read the database (a pause of ``retry_after`` before Redis is tried again), and a ``forget``
    is retried until Redis takes it or until ``hold`` seconds have passed, after which no copy made
    before it can still be served anywhere: the caller acknowledges only then.
    """

    def __init__(self, client: Redis, prefix: str, ttl: float, db_timeout: float, retry_after: float = 1.0) -> None:
        self._client = client
        self._prefix = f"{prefix}session-cache:"
        self._ttl_ms = max(int(ttl * 1000), 1)
        # A read racing an invalidation began before it and takes at most the database deadline; a stamp
        # older than that (plus scheduling slack) is refused, so versions need to outlive it only.
        self._max_age_us = int((db_timeout + 1.0) * 1_000_000)
        self._version_ms = int((2 * (db_timeout + 1.0) + ttl + 60.0) * 1000)
        self.hold = ttl + db_timeout + 1.0 + 0.5  # entry life + the racing put's bound + clock slack
        self._retry_after = retry_after
        self._down_until = -math.inf
        self._pending = 0  # forgets of this process Redis has not taken yet: until then, no cached answers here
        self._said = -math.inf
        self._tasks: set[asyncio.Task[None]] = set()
        self._stamp = client.register_script(_STAMP)
        self._put = client.register_script(_PUT)
        self._forget = client.register_script(_FORGET)
        self._forget_user = client.register_script(_FORGET_USER)

    @property
    def usable(self) -> bool:
        return self._pending == 0 and time.monotonic() >= self._down_until

    async def get(self, session_id: str) -> Principal | None:
        if not self.usable:
            return None
        try:
            raw = await self._client.get(self._key("s:", session_id))
        except _FAILURES as exc:
            self._failed(exc)
            return None
        if raw is None:
            return None
        try:
            user_id, role, verified = json.loads(raw)
        except (ValueError, TypeError):
            return None  # not an entry of ours (something else wrote under the prefix): read the database
        return Principal(str(user_id), session_id, str(role), verified=bool(verified))

    async def stamp(self, session_id: str, user_id: str) -> Stamp:
        if not self.usable:
            return ()
        keys = [self._prefix + "gen", self._key("sv:", session_id), self._key("uv:", user_id)]
        try:
            generation, session_v, user_v, seconds, micros = await self._stamp(keys=keys, args=[secrets.randbits(62)])
        except _FAILURES as exc:
            self._failed(exc)
            return ()
        return (int(generation), int(session_v), int(user_v), int(seconds) * 1_000_000 + int(micros))

    async def put(self, principal: Principal, stamp: Stamp) -> None:
        if len(stamp) != 4 or not self.usable:
            return  # stamped while Redis failed (or an invalidation was pending): nothing to compare with
        generation, session_v, user_v, stamped_us = stamp
        keys = [
            self._prefix + "gen",
            self._key("sv:", principal.session_id),
            self._key("uv:", principal.user_id),
            self._key("s:", principal.session_id),
            self._key("u:", principal.user_id),
        ]
        payload = json.dumps([principal.user_id, principal.role, principal.verified])
        args: list[int | str] = [generation, session_v, user_v, stamped_us, self._max_age_us, payload, self._ttl_ms]
        try:
            await self._put(keys=keys, args=[*args, principal.session_id])
        except _FAILURES as exc:
            self._failed(exc)

    async def forget(self, session_ids: list[str]) -> None:
        if not session_ids:
            return
        keys = [key for sid in session_ids for key in (self._key("sv:", sid), self._key("s:", sid))]
        await self._until_taken(lambda: self._forget(keys=keys, args=[self._version_ms]))

    async def forget_user(self, user_id: str) -> None:
        keys = [self._key("uv:", user_id), self._key("u:", user_id)]
        await self._until_taken(lambda: self._forget_user(keys=keys, args=[self._version_ms, self._prefix + "s:"]))

    async def _until_taken(self, invalidate: Callable[[], Awaitable[object]]) -> None:
        """Return once Redis took the invalidation, or once every copy it should have removed has expired.

        Runs as a task of its own: a caller cancelled meanwhile (its client went away) leaves it running,
        so this process serves no cached answer until it is done.
        """
        task = asyncio.get_running_loop().create_task(self._retry(invalidate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    async def _retry(self, invalidate: Callable[[], Awaitable[object]]) -> None:
        self._pending += 1
        deadline = time.monotonic() + self.hold
        pause = 0.05
        try:
            while True:
                try:
                    async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                        await invalidate()
                except _FAILURES as exc:
                    self._failed(exc)
                else:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    logger.warning(
                        "session cache invalidation did not reach redis; answered once every cached copy had expired",
                        extra={"hold_seconds": self.hold},
                    )
                    return
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, 0.5)
        finally:
            self._pending -= 1

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._retry_after
        if time.monotonic() - self._said >= 60:
            self._said = time.monotonic()
            logger.warning(
                "redis unavailable: the session cache reads the database until it answers",
                extra={"error": type(exc).__name__},
            )

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}{name}"


class CachedUserStore:
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
        self._store = store
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

    async def add(self, user: User, effects: Effects = NO_EFFECTS) -> None:
        await self._store.add(user, effects)

    async def find_by_login(self, username_or_email: str) -> User | None:
        return await self._store.find_by_login(username_or_email)

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        return await self._store.search(query)

    async def update(
        self, user_id: str, changes: UserChanges, now: datetime, effects: Effects = NO_EFFECTS
    ) -> User | None:
        try:
            return await self._store.update(user_id, changes, now, effects)
        finally:
            self._entries.pop(user_id, None)

    async def change_password(self, change: PasswordChange, effects: Effects = NO_EFFECTS) -> bool:
        try:
            return await self._store.change_password(change, effects)
        finally:
            self._entries.pop(change.user_id, None)

    async def delete(self, user_id: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        try:
            return await self._store.delete(user_id, now, effects)
        finally:
            self._entries.pop(user_id, None)
