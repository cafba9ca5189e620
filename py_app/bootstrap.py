"""Composition root: builds every adapter and service for a process role. Wiring lives only here.

A role is what one process does: ``edge`` serves REST and gRPC, ``grpc`` serves gRPC only, ``worker``
runs background jobs. Each role has a builder that returns a container typed by ports; whatever the
builder opened is closed by the container's exit stack. Every dependency can be supplied through
keyword (``build_edge(settings, hasher=...)``, see ``Overrides``): tests pass fakes that way, and nothing
reaches into a service's private attributes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self, TypedDict, Unpack

from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.auth.models import SessionRules
from py_app.auth.ports import AccessTokens, AuthUseCases, SessionCache, SessionStore
from py_app.auth.repositories import SqlSessionStore
from py_app.auth.services import AuthService
from py_app.config import Settings, resolve_jwt_secret
from py_app.core.ports import Clock, PasswordHasher, SystemClock
from py_app.health.models import Lifecycle
from py_app.health.ports import Probe
from py_app.health.services import HealthService
from py_app.infra import migrations
from py_app.infra.cache import InProcessSessionCache, NoSessionCache
from py_app.infra.db import create_engine
from py_app.infra.probes import DatabaseProbe, RedisProbe, SchemaProbe
from py_app.infra.redis import create_redis
from py_app.infra.security import Argon2Hasher, JwtAccessTokens, derive_key
from py_app.users.ports import UserStore, UserUseCases
from py_app.users.repositories import SqlUserStore
from py_app.users.services import UserService

Runner = Callable[[Settings], int]


class Overrides(TypedDict, total=False):
    """Dependencies supplied instead of the ones the settings would build."""

    clock: Clock
    hasher: PasswordHasher
    tokens: AccessTokens
    cache: SessionCache
    rules: SessionRules
    user_store: UserStore
    session_store: SessionStore


@dataclass(kw_only=True)
class Container:
    """What a serving process needs, built once per process and closed once at its end."""

    settings: Settings
    users: UserUseCases
    auth: AuthUseCases
    health: HealthService
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def aclose(self) -> None:
        """Release pools and threads: called last at shutdown, after the transports have drained."""
        await self.stack.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@dataclass(kw_only=True)
class WorkerContainer:
    """What the background worker needs. It has no jobs yet: the outbox relay and pruning come later."""

    settings: Settings
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def aclose(self) -> None:
        await self.stack.aclose()


def build_edge(settings: Settings, **overrides: Unpack[Overrides]) -> Container:
    """The monolithic edge (REST + gRPC): every port served by an in-process adapter."""
    return _build_services(settings, overrides)


def build_grpc(settings: Settings, **overrides: Unpack[Overrides]) -> Container:
    """A gRPC-only process: the same services, no REST."""
    return _build_services(settings, overrides)


def build_worker(settings: Settings, **overrides: Unpack[Overrides]) -> WorkerContainer:
    return WorkerContainer(settings=settings)


def runner(settings: Settings) -> Runner:
    """The process runner of the configured role (each runner builds its own container)."""
    from py_app.entrypoints import grpc_runner, serve, worker

    runners: dict[str, Runner] = {"edge": serve.serve, "grpc": grpc_runner.run, "worker": worker.run}
    return runners[settings.role]


def _build_services(settings: Settings, overrides: Overrides) -> Container:
    stack = contextlib.AsyncExitStack()
    engine = create_engine(settings.effective_database_url, timeout=settings.db_timeout)
    stack.push_async_callback(engine.dispose)
    probes: list[Probe] = [
        DatabaseProbe(engine),
        SchemaProbe(engine, migrations.head_revision(), migrations.known_revisions()),
    ]
    if settings.redis_url:
        redis = create_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        # Nothing depends on Redis yet: its outage degrades readiness without taking the service out of
        # rotation. Critical once the shared session cache uses it.
        probes.append(RedisProbe(redis, critical=False))
    hasher = overrides.get("hasher") or _hasher(stack)
    clock = overrides.get("clock") or SystemClock()
    secret = resolve_jwt_secret(settings)
    tokens = overrides.get("tokens") or JwtAccessTokens(
        secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience, ttl=settings.access_token_ttl
    )
    cache = overrides.get("cache") or _session_cache(settings, engine)
    user_store = overrides.get("user_store") or SqlUserStore(engine)
    users = UserService(user_store, hasher, clock, cache)
    auth = AuthService(
        sessions=overrides.get("session_store") or SqlSessionStore(engine),
        accounts=user_store,
        users=users,
        hasher=hasher,
        tokens=tokens,
        cache=cache,
        clock=clock,
        rules=overrides.get("rules") or _rules(settings),
        refresh_key=derive_key(secret, "refresh-token-child"),
    )
    lifecycle = Lifecycle()
    return Container(
        settings=settings,
        users=users,
        auth=auth,
        health=HealthService(probes, lifecycle),
        lifecycle=lifecycle,
        stack=stack,
    )


def _hasher(stack: contextlib.AsyncExitStack) -> PasswordHasher:
    hasher = Argon2Hasher()
    stack.callback(hasher.close)
    return hasher


def _rules(settings: Settings) -> SessionRules:
    return SessionRules(
        idle_seconds=settings.refresh_idle_ttl,
        absolute_seconds=settings.refresh_absolute_ttl,
        reuse_grace_seconds=settings.refresh_reuse_grace,
    )


def _session_cache(settings: Settings, engine: AsyncEngine) -> SessionCache:
    """A cache is only correct where its invalidation reaches every process that serves requests.

    An in-process cache qualifies when this is the only serving process: one worker on an embedded
    database (a network database means other replicas may be revoking sessions). Otherwise none,
    until a shared (Redis) cache is configured.
    """
    embedded = engine.url.get_backend_name() == "sqlite"
    if embedded and settings.workers == 1 and settings.session_cache_ttl > 0:
        return InProcessSessionCache(settings.session_cache_ttl)
    return NoSessionCache()
