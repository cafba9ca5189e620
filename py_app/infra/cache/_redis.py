"""The caches shared in Redis by every worker and replica: sessions (``RedisSessionCache``) and user records
(``RedisUserStore``), on one set of versioned keys (``RedisCacheLink``).

Why neither is ever stale, a Redis outage or partition included, is in docs/ARCHITECTURE.md ("The shared
session cache" and "User records in Redis").
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from py_app.auth.models import Rotation, Session, SessionRules, SessionState
from py_app.auth.ports import SessionStore, Stamp
from py_app.core.effects import NO_EFFECTS, Effects
from py_app.core.identity import Principal
from py_app.core.ports import Metrics, NoMetrics
from py_app.infra.cache._records import UserRecordsCache
from py_app.users.models import LoginWrite, User
from py_app.users.ports import UserStore

logger = logging.getLogger("arcana.cache")

# The generation names one life of the Redis data set: made on first use, lost with everything else when
# Redis restarts empty, so a stamp taken before a restart can never match the versions after it. It expires
# after a day (a new one only refuses the puts in flight), so an abandoned prefix leaves nothing behind.
# KEYS: the generation, then each version the stamp names.
_STAMP = """
local g = redis.call('GET', KEYS[1])
if not g then g = ARGV[1]; redis.call('SET', KEYS[1], g, 'EX', 86400) end
local out = {g}
for i = 2, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) or '0' end
local t = redis.call('TIME')
out[#out + 1] = t[1]
out[#out + 1] = t[2]
return out
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
# A user's record, under the same rule: KEYS: the generation, the user's version, the record.
_PUT_RECORD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[3]) > tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
return 1
"""
# KEYS: version, entry, version, entry ... (of each session, or a user's version and record).
_FORGET = """
for i = 1, #KEYS, 2 do
  redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
  redis.call('DEL', KEYS[i + 1])
end
return 1
"""
# KEYS: the user's version, the set of its cached sessions, its record; ARGV[2]: the prefix of entry keys.
_FORGET_USER = """
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', ARGV[2] .. sid) end
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""
_FAILURES = (RedisError, OSError, TimeoutError)


class RedisCacheLink:
    """What the Redis caches of one process share: the client and prefix, the bounds that follow from the
    entries' TTL and the database deadline, whether Redis may be used now, and the invalidations it has not
    taken yet (while there is one, this process serves no cached answer of either cache).

    When Redis fails, lookups read the database (a pause of ``retry_after`` before Redis is tried again), and
    an invalidation is retried until Redis takes it or until ``hold`` seconds have passed, after which no copy
    made before it can still be served anywhere: the caller acknowledges only then.
    """

    def __init__(self, client: Redis, prefix: str, ttl: float, db_timeout: float, retry_after: float = 1.0) -> None:
        self.client = client
        self.prefix = f"{prefix}session-cache:"
        self.ttl_ms = max(int(ttl * 1000), 1)
        # A read racing an invalidation began before it and takes at most the database deadline; a stamp
        # older than that (plus scheduling slack) is refused, so versions need to outlive it only.
        self.max_age_us = int((db_timeout + 1.0) * 1_000_000)
        self.version_ms = int((2 * (db_timeout + 1.0) + ttl + 60.0) * 1000)
        self.hold = ttl + db_timeout + 1.0 + 0.5  # entry life + the racing put's bound + clock slack
        self._retry_after = retry_after
        self._down_until = -math.inf
        self._pending = 0  # invalidations of this process Redis has not taken yet
        self._said = -math.inf
        self._tasks: set[asyncio.Task[None]] = set()
        self._stamp = client.register_script(_STAMP)
        self._forget = client.register_script(_FORGET)
        self._forget_user = client.register_script(_FORGET_USER)

    @property
    def usable(self) -> bool:
        return self._pending == 0 and time.monotonic() >= self._down_until

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}{name}"

    async def read(self, key: str) -> bytes | None:
        """One entry, or None when there is none or Redis may not be used now (then: read the database)."""
        if not self.usable:
            return None
        try:
            raw = await self.client.get(key)
        except _FAILURES as exc:
            self.failed(exc)
            return None
        return raw.encode() if isinstance(raw, str) else raw

    async def stamp(self, versions: list[str]) -> Stamp:
        """(generation, each version, Redis's time in µs), taken before a database read; () when Redis failed."""
        if not self.usable:
            return ()
        try:
            generation, *values = await self._stamp(keys=[self.prefix + "gen", *versions], args=[secrets.randbits(62)])
        except _FAILURES as exc:
            self.failed(exc)
            return ()
        *found, seconds, micros = values
        return (int(generation), *(int(value) for value in found), int(seconds) * 1_000_000 + int(micros))

    async def fill(self, put: Callable[[], Awaitable[object]]) -> None:
        """Run a put script (it refuses a stale stamp by itself); a failure only marks Redis down."""
        if not self.usable:
            return  # an invalidation is pending: the put's stamp may predate it without Redis knowing
        try:
            await put()
        except _FAILURES as exc:
            self.failed(exc)

    async def forget(self, keys: list[str], within: float | None = None) -> None:
        """Advance each version and delete its entry (``keys``: version, entry, version, entry ...); ``within``
        as in ``until_taken``."""
        if keys:
            await self.until_taken(lambda: self._forget(keys=keys, args=[self.version_ms]), within)

    async def forget_user(self, user_id: str) -> None:
        """Advance the user's version and delete every cached session of the user and the user's record."""
        keys = [self.key("uv:", user_id), self.key("u:", user_id), self.key("ur:", user_id)]
        await self.until_taken(lambda: self._forget_user(keys=keys, args=[self.version_ms, self.prefix + "s:"]))

    async def until_taken(self, invalidate: Callable[[], Awaitable[object]], within: float | None = None) -> None:
        """Return once Redis took the invalidation, or once every copy it should have removed has expired;
        with ``within``, after at most that many seconds, the invalidation going on without the caller (for a
        change no one must see at once: a login's last-login time).

        Runs as a task of its own: a caller cancelled meanwhile (its client went away) leaves it running,
        so this process serves no cached answer until it is done.
        """
        task = asyncio.get_running_loop().create_task(self._retry(invalidate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if within is None:
            await asyncio.shield(task)
        else:
            await asyncio.wait({task}, timeout=within)  # neither a timeout nor a cancelled caller stops it

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
                    self.failed(exc)
                else:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    logger.warning(
                        "cache invalidation did not reach redis; every cached copy made before it has expired",
                        extra={"hold_seconds": self.hold},
                    )
                    return
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, 0.5)
        finally:
            self._pending -= 1

    def failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._retry_after
        if time.monotonic() - self._said >= 60:
            self._said = time.monotonic()
            logger.warning(
                "redis unavailable: the shared caches read the database until it answers",
                extra={"error": type(exc).__name__},
            )


class RedisSessionCache:
    """Live sessions shared by every process and replica using one Redis and prefix.

    Versions and entries live in Redis and change only by Lua scripts, so ``put`` is refused atomically
    when the session's or the user's version moved (or Redis restarted) since ``stamp``. ``forget_user``
    also drops the user's cached record (``RedisUserStore``, on the same ``link``). Redis failures: see
    ``RedisCacheLink``.
    """

    def __init__(self, client: Redis, prefix: str, ttl: float, db_timeout: float, retry_after: float = 1.0) -> None:
        self.link = RedisCacheLink(client, prefix, ttl, db_timeout, retry_after)
        self._put = client.register_script(_PUT)

    @property
    def hold(self) -> float:
        return self.link.hold

    async def get(self, session_id: str) -> Principal | None:
        raw = await self.link.read(self.link.key("s:", session_id))
        if raw is None:
            return None
        try:
            user_id, role, verified = json.loads(raw)
        except (ValueError, TypeError):
            return None  # not an entry of ours (something else wrote under the prefix): read the database
        return Principal(str(user_id), session_id, str(role), verified=bool(verified))

    async def stamp(self, session_id: str, user_id: str) -> Stamp:
        return await self.link.stamp([self.link.key("sv:", session_id), self.link.key("uv:", user_id)])

    async def put(self, principal: Principal, stamp: Stamp) -> None:
        if len(stamp) != 4:
            return  # stamped while Redis failed: nothing to compare with
        generation, session_v, user_v, stamped_us = stamp
        link = self.link
        keys = [
            link.prefix + "gen",
            link.key("sv:", principal.session_id),
            link.key("uv:", principal.user_id),
            link.key("s:", principal.session_id),
            link.key("u:", principal.user_id),
        ]
        payload = json.dumps([principal.user_id, principal.role, principal.verified])
        args: list[int | str] = [generation, session_v, user_v, stamped_us, link.max_age_us, payload, link.ttl_ms]
        await link.fill(lambda: self._put(keys=keys, args=[*args, principal.session_id]))

    async def forget(self, session_ids: list[str]) -> None:
        await self.link.forget(
            [key for sid in session_ids for key in (self.link.key("sv:", sid), self.link.key("s:", sid))]
        )

    async def forget_user(self, user_id: str) -> None:
        await self.link.forget_user(user_id)


_RECORD_ENCODER = msgspec.json.Encoder()
_RECORD_DECODER = msgspec.json.Decoder(User)


class RedisUserStore(UserRecordsCache):
    """A ``UserStore`` whose ``get`` (a point query's read, and ``me``'s) is shared in Redis by every process and
    replica on ``link``; everything else goes to ``store``.

    A record is versioned by its user's version, the one the session cache keeps: the stamp is taken before
    the database read and the put refused in Redis when it moved (or the generation changed) since, so a
    read that raced a write is not kept. Every write of the row advances the version and drops the record
    before it is acknowledged: this store's own writes, which forget the whole user (its cached sessions
    too, so ``UserService`` needs no ``forget_user`` of its own after them), a login's record
    (``RecordedLogins``), and whatever calls the session cache's ``forget_user`` (a reset, a verification,
    a replica's update). The record is kept and served without its password hash (``password_hash`` is ""):
    ``credentials`` reads the database for the password checks, so no hash is ever at rest in Redis.
    """

    def __init__(self, store: UserStore, link: RedisCacheLink, metrics: Metrics | None = None) -> None:
        super().__init__(store)
        self._link = link
        self._metrics = metrics or NoMetrics()
        self._put = link.client.register_script(_PUT_RECORD)

    async def get(self, user_id: str) -> User | None:
        link = self._link
        cached = self._decoded(await link.read(link.key("ur:", user_id)))
        if cached is not None and cached.id == user_id:
            self._metrics.cache_lookup("user", True)
            return cached
        self._metrics.cache_lookup("user", False)
        version = link.key("uv:", user_id)
        stamp = await link.stamp([version])  # before the read
        found = await self._store.get(user_id)
        if found is None:
            return None  # never cached: an id is not reused, and a new account is a new id
        record = replace(found, password_hash="")
        if len(stamp) == 3:
            generation, user_v, stamped_us = stamp
            keys = [link.prefix + "gen", version, link.key("ur:", user_id)]
            payload = _RECORD_ENCODER.encode(record)
            args: list[int | bytes] = [generation, user_v, stamped_us, link.max_age_us, payload, link.ttl_ms]
            await link.fill(lambda: self._put(keys=keys, args=args))
        return record

    async def forget(self, user_id: str, within: float | None = None) -> None:
        """Advance the user's version and drop the record (the sessions stay); returns once no old copy can be
        served, or after ``within`` seconds at most (``RedisCacheLink.until_taken``)."""
        await self._link.forget([self._link.key("uv:", user_id), self._link.key("ur:", user_id)], within)

    async def _forgotten(self, user_id: str) -> None:
        await self._link.forget_user(user_id)  # the whole account: see the class's docstring

    @staticmethod
    def _decoded(raw: bytes | None) -> User | None:
        if raw is None:
            return None
        try:
            return _RECORD_DECODER.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None  # not a record of ours (something else wrote under the prefix): read the database


# How long a login waits for Redis to take its record's invalidation: with Redis answering, it is taken in
# a round trip; during an outage the login does not wait the hold, only its last-login time may be read
# stale by another replica until it has passed (a rehash changes nothing cached: no hash is stored).
LOGIN_FORGET_WAIT = 1.0


class RecordedLogins:
    """A ``SessionStore`` whose logins (a session opened with a ``LoginWrite``: the account's last login, a
    rehash) drop the account's cached record; everything else is ``store``'s. The login waits for it at most
    ``LOGIN_FORGET_WAIT``: a last-login time is not worth a login held for the whole hold in a Redis outage."""

    def __init__(self, store: SessionStore, records: RedisUserStore) -> None:
        self._store = store
        self._records = records

    async def open(
        self, session: Session, refresh_digest: str, login: LoginWrite | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        if login is None:
            return await self._store.open(session, refresh_digest, login, effects)
        try:
            return await self._store.open(session, refresh_digest, login, effects)
        finally:
            await self._records.forget(login.user_id, within=LOGIN_FORGET_WAIT)

    async def rotate(
        self, digest: str, child_digest: str, now: datetime, rules: SessionRules, ip: str = ""
    ) -> Rotation:
        return await self._store.rotate(digest, child_digest, now, rules, ip)

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        return await self._store.state(session_id, user_id)

    async def family(self, digest: str) -> str | None:
        return await self._store.family(digest)

    async def list_for_user(self, user_id: str) -> list[Session]:
        return await self._store.list_for_user(user_id)

    async def revoke(
        self, session_id: str, now: datetime, user_id: str | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        return await self._store.revoke(session_id, now, user_id, effects)

    async def revoke_for_user(
        self, user_id: str, now: datetime, keep: str | None = None, effects: Effects = NO_EFFECTS
    ) -> list[str]:
        return await self._store.revoke_for_user(user_id, now, keep, effects)
