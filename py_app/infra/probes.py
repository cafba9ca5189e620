"""Readiness probes for the adapters: the database, its schema, and Redis."""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.health.ports import CheckFailed
from py_app.infra.db import DATABASE_FAILURES, ping, run_bounded
from py_app.infra.migrations import read_revision, schema_problem

MIGRATE = "run `python -m py_app migrate`"


class DatabaseProbe:
    name = "database"
    critical = True

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def check(self) -> None:
        await ping(self._engine)


class SchemaProbe:
    """The database's schema is one this version works on (see ``migrations.schema_problem``)."""

    name = "schema"
    critical = True

    def __init__(self, engine: AsyncEngine, head: str | None, known: frozenset[str]) -> None:
        self._engine = engine
        self._head = head
        self._known = known

    async def check(self) -> None:
        try:
            current = await run_bounded(self._engine, read_revision)
        except DATABASE_FAILURES:
            raise CheckFailed("not checked: the database does not answer") from None
        problem = schema_problem(current, self._head, self._known)
        if problem:
            raise CheckFailed(f"{problem}; {MIGRATE}")


class RedisProbe:
    name = "redis"

    def __init__(self, client: Redis, *, critical: bool) -> None:
        self._client = client
        self.critical = critical

    async def check(self) -> None:
        await self._client.ping()
