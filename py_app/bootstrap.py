"""Composition root: builds every adapter and service for a deployment mode. Wiring lives only here."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.auth.services import AuthService, SessionPolicy
from py_app.config import Settings, resolve_jwt_secret
from py_app.core.ports import Clock, SystemClock
from py_app.health.models import Lifecycle
from py_app.health.ports import Probe
from py_app.health.services import HealthService
from py_app.infra.cache import InProcessSessionCache, NoSessionCache
from py_app.infra.db import create_engine
from py_app.infra.probes import DatabaseProbe, RedisProbe
from py_app.infra.redis import create_redis
from py_app.infra.security import Argon2Hasher, JwtAccessTokens
from py_app.infra.uow import SqlUnitOfWork
from py_app.users.services import UserService


@dataclass
class Container:
    """Everything a transport needs, built once per process."""

    settings: Settings
    engine: AsyncEngine
    redis: Redis | None
    users: UserService
    auth: AuthService
    health: HealthService
    hasher: Argon2Hasher
    lifecycle: Lifecycle = field(default_factory=Lifecycle)

    async def aclose(self) -> None:
        """Release pools: called last at shutdown, after the transports have drained."""
        self.hasher.close()
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
    hasher = Argon2Hasher()
    clock = clock or SystemClock()
    tokens = JwtAccessTokens(
        resolve_jwt_secret(settings),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=settings.access_token_ttl,
    )
    # An in-process cache is only safe when this process sees every revocation: one worker.
    one_process = settings.workers == 1 and settings.session_cache_ttl > 0
    cache = InProcessSessionCache(settings.session_cache_ttl) if one_process else NoSessionCache()
    policy = SessionPolicy(
        idle_seconds=settings.refresh_idle_ttl,
        absolute_seconds=settings.refresh_absolute_ttl,
        reuse_grace_seconds=settings.refresh_reuse_grace,
    )

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    users = UserService(uow, hasher, clock, cache)
    return Container(
        settings=settings,
        engine=engine,
        redis=redis,
        users=users,
        auth=AuthService(uow, users, hasher, tokens, cache, clock, policy),
        health=HealthService(probes, lifecycle),
        hasher=hasher,
        lifecycle=lifecycle,
    )
