"""Composition root: builds every adapter and service for a deployment mode. Wiring lives only here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.config import Settings
from py_app.core.ports import Clock, SystemClock
from py_app.health.models import Lifecycle
from py_app.health.ports import Probe
from py_app.health.services import HealthService
from py_app.infra.db import create_engine
from py_app.infra.probes import DatabaseProbe, RedisProbe
from py_app.infra.redis import create_redis
from py_app.infra.security import Argon2Hasher
from py_app.infra.uow import SqlUnitOfWork
from py_app.users.services import UserService


@dataclass
class Container:
    """Everything a transport needs, built once per process."""

    settings: Settings
    engine: AsyncEngine
    redis: Redis | None
    users: UserService
    health: HealthService
    lifecycle: Lifecycle = field(default_factory=Lifecycle)

    async def aclose(self) -> None:
        """Release pools: called last at shutdown, after the transports have drained."""
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def build(settings: Settings, *, clock: Clock | None = None) -> Container:
    """The monolithic wiring: every port served by an in-process adapter."""
    engine = create_engine(settings.effective_database_url)
    redis = create_redis(settings.redis_url) if settings.redis_url else None
    lifecycle = Lifecycle()
    probes: list[Probe] = [DatabaseProbe(engine)]
    if redis is not None:
        probes.append(RedisProbe(redis))
    # Each argon2 hash holds ~19 MiB; two per core keeps both cores busy without unbounded memory.
    hasher = Argon2Hasher(max_concurrent=2 * (os.cpu_count() or 1))
    users = UserService(lambda: SqlUnitOfWork(engine), hasher, clock or SystemClock())
    return Container(
        settings=settings,
        engine=engine,
        redis=redis,
        users=users,
        health=HealthService(probes, lifecycle),
        lifecycle=lifecycle,
    )
