"""Session caches: in-process (when every change reaches it), shared in Redis (replicas), or none; and the
user records' caches: in-process where the database counts its commits (``CachedUserStore``), shared in
Redis beside the session cache otherwise (``RedisUserStore``); and outside them all, the account a
request's session check already read (``RequestAccounts``, ``infra.request_reads``).

Invalidation is versioned per session and per user: ``stamp`` reads both versions before the
database read, every ``forget`` advances them, and ``put`` refuses a result stamped before an
advance. A logout therefore voids only the puts racing that one session, not everyone's.

With ``changes`` (a counter that moves whenever any process commits to the database, e.g. SQLite's
``PRAGMA data_version``), an entry also dies when the database has changed since it was read, so
the changes made by other workers or processes on the same database file reach this cache too.

The Redis adapters keep the same versions in Redis, so every replica sharing it sees every invalidation;
why they are never stale, a Redis outage or partition included, is in docs/ARCHITECTURE.md ("The shared
session cache", "User records in Redis").
"""

from py_app.infra.cache._memory import CachedUserStore, InProcessSessionCache, NoSessionCache
from py_app.infra.cache._redis import RecordedLogins, RedisCacheLink, RedisSessionCache, RedisUserStore
from py_app.infra.cache._request import RequestAccounts

__all__ = [
    "CachedUserStore",
    "InProcessSessionCache",
    "NoSessionCache",
    "RecordedLogins",
    "RedisCacheLink",
    "RedisSessionCache",
    "RedisUserStore",
    "RequestAccounts",
]
