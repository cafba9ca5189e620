"""Composition root: builds every adapter and service for a process role. Wiring lives only here.

A role is what one process does: ``edge`` serves REST and gRPC, ``grpc`` serves gRPC only, ``worker``
runs background jobs. Each role has a builder that returns a container typed by ports; whatever the
builder opened is closed by the container's exit stack. Every dependency can be supplied as a
keyword (``build_edge(settings, hasher=...)``, see ``Overrides``): tests pass fakes that way, and
nothing reaches into a service's private attributes.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.audit.ports import AuditStore, AuditUseCases
from py_app.audit.repositories import SqlAuditStore
from py_app.audit.services import AuditService
from py_app.auth.mail import render as render_mail
from py_app.auth.models import SessionRules, TokenPurpose
from py_app.auth.ports import (
    AccessTokens,
    AccountReplica,
    AccountTokenStore,
    AuthJobs,
    AuthUseCases,
    PublishedKeys,
    RecoveryUseCases,
    SessionCache,
    SessionStore,
)
from py_app.auth.repositories import SqlAccountTokenStore, SqlSessionStore
from py_app.auth.services import (
    AuthLimits,
    AuthService,
    LoginPolicies,
    LoginThrottle,
    RecoveryLimits,
    RecoveryService,
)
from py_app.auth.services._recovery import RESET_REQUESTED, VERIFICATION_REQUESTED
from py_app.config import Settings, SettingsError, resolve_internal_secret, resolve_jwt_secret
from py_app.core.limits import Limiter, Policy
from py_app.core.ports import Clock, Counters, Metrics, NoMetrics, PasswordHasher, SystemClock
from py_app.health.models import Lifecycle
from py_app.health.ports import Probe
from py_app.health.services import HealthService
from py_app.infra import migrations
from py_app.infra.cache import (
    CachedUserStore,
    InProcessSessionCache,
    NoSessionCache,
    RecordedLogins,
    RedisSessionCache,
    RedisUserStore,
    RequestAccounts,
)
from py_app.infra.counters import CounterStore, FailoverCounters, InProcessCounters, RedisCounters, SqlCounters
from py_app.infra.db import ChangeCounter, change_counter, create_engine
from py_app.infra.jobs import Every, Job
from py_app.infra.keys import KeyRing, KeyRingError, KeyRingStore, KeyRingWatcher, new_key, secret_ring
from py_app.infra.mail import MailDelivery, Mailer, Renderer, SmtpMailer
from py_app.infra.metrics import MeteredHasher, MeteredSessionCache, observe_pool
from py_app.infra.outbox import OutboxStore, SqlOutbox
from py_app.infra.probes import DatabaseProbe, RedisProbe, SchemaProbe
from py_app.infra.redis import create_redis
from py_app.infra.relay import Handler, OutboxRelay
from py_app.infra.remote import Served, Target, TierProbe, served
from py_app.infra.remote_services import (
    RemoteAuditUseCases,
    RemoteAuthUseCases,
    RemoteRecoveryUseCases,
    RemoteUserUseCases,
)
from py_app.infra.remote_stores import (
    RemoteAccountReplica,
    RemoteAccountTokenStore,
    RemoteAccountWrites,
    RemoteAuditStore,
    RemoteCounters,
    RemoteOutbox,
    RemoteSessionStore,
    RemoteUserStore,
)
from py_app.infra.replication import (
    ACCOUNT_CHANGED,
    ReplicaAccountTokenStore,
    ReplicaSessionStore,
    ReplicatedUserStore,
    SqlAccountReplica,
)
from py_app.infra.security import Argon2Hasher, JwtAccessTokens, NoPublishedKeys, derive_key
from py_app.infra.service_auth import ServiceCredential
from py_app.users.models import Role, Status, UserQuery
from py_app.users.ports import AccountWrites, PrincipalCache, UserStore, UserUseCases
from py_app.users.repositories import SqlAccountWrites, SqlUserStore
from py_app.users.services import UserService

Runner = Callable[[Settings], int]
DELIVERED_KEPT = timedelta(days=7)  # delivered outbox messages are kept this long, for operators


class Overrides(TypedDict, total=False):
    """Dependencies supplied instead of the ones the settings would build."""

    clock: Clock
    hasher: PasswordHasher
    tokens: AccessTokens
    keys: PublishedKeys
    cache: SessionCache
    rules: SessionRules
    user_store: UserStore
    session_store: SessionStore
    account_tokens: AccountTokenStore
    audit_store: AuditStore
    mailer: Mailer
    counters: Counters
    metrics: Metrics


@dataclass(kw_only=True)
class Container:
    """What a serving process needs, built once per process and closed once at its end."""

    settings: Settings
    users: UserUseCases
    auth: AuthUseCases
    recovery: RecoveryUseCases
    audit: AuditUseCases
    keys: PublishedKeys
    health: HealthService
    metrics: Metrics = field(default_factory=NoMetrics)
    cache: SessionCache = field(default_factory=NoSessionCache)
    jobs: tuple[Job, ...] = ()
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
    """What the background worker needs: its jobs (the outbox relay, pruning) and what they close."""

    settings: Settings
    jobs: tuple[Job, ...] = ()
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def aclose(self) -> None:
        await self.stack.aclose()


@dataclass(kw_only=True)
class TierContainer:
    """An internal tier of the layered mode (repository or service): the ports it serves over internal
    gRPC, its readiness, and its background jobs (the service tier's)."""

    settings: Settings
    ports: dict[str, Served]
    health: HealthService
    jobs: tuple[Job, ...] = ()
    warm_up: tuple[Callable[[], Awaitable[None]], ...] = ()  # run before it serves (the service tier's hasher)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stack.aclose()


@dataclass(kw_only=True)
class Stores:
    """The store ports the services use: SQL adapters over this process's engine, or clients of the repository tier."""

    users: UserStore
    sessions: SessionStore
    account_tokens: AccountTokenStore
    audit: AuditStore
    outbox: OutboxStore
    counters: Counters | None  # None: chosen from the settings (Redis, in-process or the database)
    probes: list[Probe]
    engine: AsyncEngine | None  # None: this process never touches the database
    # The accounts' use cases when another process owns them (the microservices mode's users service).
    owner: UserUseCases | None = None


def build_edge(settings: Settings, **overrides: Unpack[Overrides]) -> Container:
    """The edge (REST + gRPC). Monolithic: every port served by an in-process adapter. Layered: the use
    cases are gRPC clients of the service tier; microservices: of the users and auth services. The edge keeps
    validation, tokens' keys and its transports."""
    if settings.mode == "layered":
        assert settings.service_target is not None
        return _remote_edge(settings, overrides, {"service": settings.service_target})
    if settings.mode == "microservices":
        assert settings.auth_target is not None
        assert settings.users_target is not None
        return _remote_edge(settings, overrides, {"auth": settings.auth_target, "users": settings.users_target})
    return _build_services(settings, overrides, _stores(settings, overrides))


def build_users_service(settings: Settings, **overrides: Unpack[Overrides]) -> TierContainer:
    """The microservices mode's users service: the accounts' owner. ``UserService`` over a store that commits
    each account write with its propagation message and delivers it to the auth service's replica; it also
    serves the account writes authentication causes (``AccountWrites``). Its relay retries propagation."""
    stack = contextlib.AsyncExitStack()
    metrics = overrides.get("metrics") or _metrics(settings, stack)
    engine = _engine(settings, stack, metrics)
    auth = _internal_target(settings, settings.auth_target, stack)
    clock = overrides.get("clock") or SystemClock()
    hasher = MeteredHasher(overrides.get("hasher") or _hasher(stack), metrics)
    outbox = SqlOutbox(engine)
    replica: AccountReplica = RemoteAccountReplica(auth)
    store = ReplicatedUserStore(SqlUserStore(engine), SqlAccountWrites(engine), outbox, replica, clock)
    # On a SQLite file the records are cached as in the monolith, under the file's commit counter, which also
    # moves on the writes the auth service asks for (AccountWrites) and every other process's.
    changes = _changes(settings, engine, stack)
    reads: UserStore = (
        store if changes is None else CachedUserStore(store, settings.session_cache_ttl, changes, metrics)
    )
    # No session cache here: the auth service forgets an account when it applies its change (SqlAccountReplica).
    users = UserService(reads, hasher, clock, NoSessionCache())

    async def housekeeping() -> None:
        await outbox.prune(clock.now() - DELIVERED_KEPT)

    lifecycle = Lifecycle()
    # Without the auth service, accounts are still read (and writes saved, answered 503): degraded, not down.
    probes = [*_database_probes(engine), TierProbe("auth", auth, critical=False)]
    return TierContainer(
        settings=settings,
        ports=dict([served(UserUseCases, users), served(AccountWrites, store)]),
        health=HealthService(probes, lifecycle),
        jobs=(OutboxRelay(outbox, {ACCOUNT_CHANGED: store.relay}, clock), Every("housekeeping", 3600, housekeeping)),
        lifecycle=lifecycle,
        stack=stack,
    )


def build_auth_service(settings: Settings, **overrides: Unpack[Overrides]) -> TierContainer:
    """The microservices mode's auth service: the monolith's auth, recovery and audit services over its own
    database, where the accounts are a replica the users service writes (``AccountReplica``, served to it);
    the account writes authentication causes go to the users service (``AccountWrites``)."""
    engines: list[AsyncEngine] = []

    def stores(stack: contextlib.AsyncExitStack, metrics: Metrics) -> Stores:
        local = _sql_stores(settings, overrides, stack, metrics)
        assert local.engine is not None
        engines.append(local.engine)
        users = _internal_target(settings, settings.users_target, stack)
        accounts = RemoteAccountWrites(users)
        sessions = SqlSessionStore(local.engine, records_logins=False)
        return replace(
            local,
            sessions=ReplicaSessionStore(sessions, accounts, local.audit, local.outbox),
            account_tokens=ReplicaAccountTokenStore(SqlAccountTokenStore(local.engine), accounts),
            # Without the users service, requests are still authenticated and refreshed: degraded, not down.
            probes=[*local.probes, TierProbe("users", users, critical=False)],
            owner=RemoteUserUseCases(users),
        )

    services = _build_services(settings, overrides, stores)
    ports = dict(
        [
            served(AuthUseCases, services.auth),
            served(RecoveryUseCases, services.recovery),
            served(AuditUseCases, services.audit),
            served(AccountReplica, SqlAccountReplica(engines[0], services.cache)),
        ]
    )
    return _serving(settings, services, ports)


def build_service(settings: Settings, **overrides: Unpack[Overrides]) -> TierContainer:
    """The layered mode's service tier: the services over gRPC clients of the repository tier, served to
    the edges over internal gRPC, with the background jobs."""
    services = _build_services(settings, overrides, _stores(settings, overrides))
    ports = dict(
        [
            served(UserUseCases, services.users),
            served(AuthUseCases, services.auth),
            served(RecoveryUseCases, services.recovery),
            served(AuditUseCases, services.audit),
        ]
    )
    return _serving(settings, services, ports)


def _serving(settings: Settings, services: Container, ports: dict[str, Served]) -> TierContainer:
    """The services of ``services`` served over internal gRPC as ``ports``, with their jobs and the hasher's warm-up."""
    return TierContainer(
        settings=settings,
        ports=ports,
        health=services.health,
        jobs=services.jobs,
        warm_up=(services.auth.prepare,),
        lifecycle=services.lifecycle,
        stack=services.stack,
    )


def build_grpc(settings: Settings, **overrides: Unpack[Overrides]) -> Container:
    """A gRPC-only process: the same services, no REST."""
    return _build_services(settings, overrides, _stores(settings, overrides))


def build_worker(settings: Settings, **overrides: Unpack[Overrides]) -> WorkerContainer:
    services = _build_services(settings, overrides, _stores(settings, overrides))
    return WorkerContainer(settings=settings, jobs=services.jobs, lifecycle=services.lifecycle, stack=services.stack)


def build_repository(settings: Settings) -> TierContainer:
    """The layered mode's repository tier: the SQL stores, served over internal gRPC; the only process
    of the topology that touches the database."""
    stack = contextlib.AsyncExitStack()
    metrics = _metrics(settings, stack)
    stores = _sql_stores(settings, {}, stack, metrics)
    assert stores.engine is not None
    counters: CounterStore = SqlCounters(stores.engine)
    ports = dict(
        [
            served(UserStore, stores.users),
            served(SessionStore, stores.sessions),
            served(AccountTokenStore, stores.account_tokens),
            served(AuditStore, stores.audit),
            served(OutboxStore, stores.outbox),
            served(CounterStore, counters),
        ]
    )
    lifecycle = Lifecycle()
    return TierContainer(
        settings=settings, ports=ports, health=HealthService(stores.probes, lifecycle), lifecycle=lifecycle, stack=stack
    )


def prepare_keys(settings: Settings) -> None:
    """Make (development) or check (production) the signing material once, before worker processes start.

    Workers must all sign alike; a production start without its key material stops here with one line.
    """
    resolve_jwt_secret(settings)
    if settings.mode != "monolithic":  # the service-token secret every process of the topology shares
        resolve_internal_secret(settings)
    if settings.jwt_algorithm != "HS256":
        _key_ring(settings, KeyRingStore(settings.effective_jwt_keys_dir))


def runner(settings: Settings) -> Runner:
    """The process runner of the configured role (each runner builds its own container)."""
    from py_app.entrypoints import grpc_runner, serve, tier, worker

    runners: dict[tuple[str, str], Runner] = {
        ("monolithic", "edge"): serve.serve,
        ("monolithic", "grpc"): grpc_runner.run,
        ("monolithic", "worker"): worker.run,
        ("layered", "edge"): serve.serve,
        ("layered", "service"): functools.partial(tier.run, "Services", build_service),
        ("layered", "repository"): functools.partial(tier.run, "Repository", build_repository),
        ("microservices", "edge"): serve.serve,
        # Each service answers the edge and the other service (its writes, its propagation).
        ("microservices", "auth"): functools.partial(
            tier.run, "Services", build_auth_service, callers=frozenset({"edge", "users"})
        ),
        ("microservices", "users"): functools.partial(
            tier.run, "Services", build_users_service, callers=frozenset({"edge", "auth"})
        ),
    }
    return runners[(settings.mode, settings.role)]  # Settings refused any other pair at start


async def admin_exists(settings: Settings) -> bool:
    """Whether an active administrator exists (for the start-up hint), reading only the user store."""
    engine = create_engine(settings.effective_database_url)
    try:
        query = UserQuery(per_page=1, role=Role.ADMIN, status=Status.ACTIVE)
        return (await SqlUserStore(engine).search(query))[1] > 0
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def account_cases(settings: Settings) -> AsyncIterator[UserUseCases]:
    """What ``create-admin`` writes accounts through: this process's own services, or in the microservices
    mode the users service's (the command runs with that service's settings, ARCANA_ROLE=users)."""
    if settings.mode == "microservices" and settings.role == "auth":
        raise SettingsError(
            "create-admin writes an account: run it with the users service's settings (ARCANA_ROLE=users)"
        )
    if settings.mode == "microservices" and settings.role == "users":
        async with build_users_service(settings) as tier:
            yield cast(UserUseCases, tier.ports[UserUseCases.__name__].adapter)
        return
    async with build_edge(settings) as container:
        yield container.users


def _remote_edge(settings: Settings, overrides: Overrides, tiers: Mapping[str, str]) -> Container:
    """An edge whose use cases are gRPC clients: of the service tier (layered), or of the users and auth services
    (microservices); one channel per target, and each one's readiness is the edge's."""
    stack = contextlib.AsyncExitStack()
    metrics = overrides.get("metrics") or _metrics(settings, stack)
    targets = {name: _internal_target(settings, address, stack) for name, address in tiers.items()}
    accounts = targets.get("users") or targets["service"]
    auth = targets.get("auth") or targets["service"]
    _, keys = _access_tokens(settings, resolve_jwt_secret(settings), stack, overrides)  # the JWKS it publishes
    lifecycle = Lifecycle()
    return Container(
        settings=settings,
        users=RemoteUserUseCases(accounts),
        auth=RemoteAuthUseCases(auth),
        recovery=RemoteRecoveryUseCases(auth),
        audit=RemoteAuditUseCases(auth),
        keys=keys,
        health=HealthService([TierProbe(name, target) for name, target in targets.items()], lifecycle),
        metrics=metrics,
        lifecycle=lifecycle,
        stack=stack,
    )


def _internal_target(settings: Settings, address: str | None, stack: contextlib.AsyncExitStack) -> Target:
    """One channel to an internal service, with this process's service credential, closed with the container."""
    assert address is not None  # Settings refused a role without the targets it needs
    credential = ServiceCredential(resolve_internal_secret(settings), settings.role)
    target = Target(address, "Services", settings.internal_timeout, credential=credential)
    stack.push_async_callback(target.close)
    return target


def _stores(settings: Settings, overrides: Overrides) -> Callable[[contextlib.AsyncExitStack, Metrics], Stores]:
    """How this process reaches its stores: in the layered mode through the repository tier, else SQL here."""
    if settings.mode == "layered":
        return functools.partial(_remote_stores, settings, overrides)
    return functools.partial(_sql_stores, settings, overrides)


def _engine(settings: Settings, stack: contextlib.AsyncExitStack, metrics: Metrics) -> AsyncEngine:
    engine = create_engine(settings.effective_database_url, timeout=settings.db_timeout)
    stack.push_async_callback(engine.dispose)
    observe_pool(engine, metrics)
    return engine


def _database_probes(engine: AsyncEngine) -> list[Probe]:
    return [DatabaseProbe(engine), SchemaProbe(engine, migrations.head_revision(), migrations.known_revisions())]


def _sql_stores(settings: Settings, overrides: Overrides, stack: contextlib.AsyncExitStack, metrics: Metrics) -> Stores:
    engine = _engine(settings, stack, metrics)
    probes = _database_probes(engine)
    return Stores(
        users=overrides.get("user_store") or SqlUserStore(engine),
        sessions=overrides.get("session_store") or SqlSessionStore(engine),
        account_tokens=overrides.get("account_tokens") or SqlAccountTokenStore(engine),
        audit=overrides.get("audit_store") or SqlAuditStore(engine),
        outbox=SqlOutbox(engine),
        counters=None,
        probes=probes,
        engine=engine,
    )


def _remote_stores(
    settings: Settings, overrides: Overrides, stack: contextlib.AsyncExitStack, metrics: Metrics
) -> Stores:
    """gRPC clients of the repository tier, over one channel; its readiness is this process's."""
    assert settings.repository_target is not None
    credential = ServiceCredential(resolve_internal_secret(settings), "service")
    target = Target(settings.repository_target, "Repository", settings.internal_timeout, credential=credential)
    stack.push_async_callback(target.close)
    return Stores(
        users=overrides.get("user_store") or RemoteUserStore(target),
        sessions=overrides.get("session_store") or RemoteSessionStore(target),
        account_tokens=overrides.get("account_tokens") or RemoteAccountTokenStore(target),
        audit=overrides.get("audit_store") or RemoteAuditStore(target),
        outbox=RemoteOutbox(target),
        # Without Redis the counters every service process shares are the repository tier's database.
        counters=None if settings.redis_url else RemoteCounters(target),
        probes=[TierProbe("repository", target)],
        engine=None,
    )


def _build_services(
    settings: Settings, overrides: Overrides, build_stores: Callable[[contextlib.AsyncExitStack, Metrics], Stores]
) -> Container:
    stack = contextlib.AsyncExitStack()
    metrics = overrides.get("metrics") or _metrics(settings, stack)
    stores = build_stores(stack, metrics)
    engine = stores.engine
    probes = list(stores.probes)
    if settings.redis_url:
        redis = create_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        # Everything using Redis falls back without it (the session cache to the database, counters to
        # this process): its outage degrades readiness without taking the service out of rotation.
        probes.append(RedisProbe(redis, critical=False))
    hasher = MeteredHasher(overrides.get("hasher") or _hasher(stack), metrics)
    clock = overrides.get("clock") or SystemClock()
    secret = resolve_jwt_secret(settings)
    tokens, keys = _access_tokens(settings, secret, stack, overrides)
    changes = _changes(settings, engine, stack)
    cache = overrides.get("cache") or _session_cache(settings, engine, stack, changes)
    user_store, sessions = stores.users, stores.sessions
    principals: PrincipalCache | None = None  # what UserService forgets accounts in: the session cache
    if "user_store" not in overrides:
        if changes is not None:
            user_store = CachedUserStore(user_store, settings.session_cache_ttl, changes, metrics)
        elif isinstance(cache, RedisSessionCache):
            # Beside the shared session cache, on its versions: every write of an account's row drops the
            # record (this store's writes, a login's record, and every forget_user of the session cache).
            user_store = RedisUserStore(user_store, cache.link, metrics)
            sessions = RecordedLogins(sessions, user_store)
            # Its writes forget the whole account (sessions too) before they return: the service's own
            # forget_user would only repeat it, and during a Redis outage wait a second hold.
            principals = NoSessionCache()
        if engine is not None:
            # Outermost, outside every cache: a request's read of the account its session check read.
            user_store = RequestAccounts(user_store)
    if not isinstance(cache, NoSessionCache):
        cache = MeteredSessionCache(cache, metrics)
    audit_store = stores.audit
    outbox = stores.outbox
    account_key = derive_key(secret, "account-token")
    users = stores.owner or UserService(user_store, hasher, clock, principals or cache)
    counters = overrides.get("counters") or stores.counters or _counters(settings, engine, stack, metrics)
    limiter = Limiter(counters, clock, enabled=settings.rate_limits, metrics=metrics)
    policy = functools.partial(_policy, settings)
    recovery = RecoveryService(
        limiter=limiter,
        limits=RecoveryLimits(
            forgot_account=policy("forgot_account"),
            forgot_address=policy("forgot_address"),
            resend_account=policy("resend_account"),
            resend_address=policy("resend_address"),
        ),
        tokens=stores.account_tokens,
        accounts=user_store,
        outbox=outbox,
        hasher=hasher,
        cache=cache,
        clock=clock,
        key=account_key,
    )
    audit = AuditService(audit_store, clock, settings.audit_retention_days)
    auth = AuthService(
        sessions=sessions,
        accounts=user_store,
        users=users,
        recovery=recovery,
        audit=audit_store,
        hasher=hasher,
        tokens=tokens,
        cache=cache,
        clock=clock,
        rules=overrides.get("rules") or _rules(settings),
        refresh_key=derive_key(secret, "refresh-token-child"),
        throttle=LoginThrottle(limiter, LoginPolicies(policy("login_account"), policy("login_address")), metrics),
        limiter=limiter,
        limits=AuthLimits(register=policy("register_address"), refresh=policy("refresh_session")),
        require_verified=settings.require_verified_email,
        metrics=metrics,
    )
    lifecycle = Lifecycle()
    links = {
        TokenPurpose.PASSWORD_RESET.value: settings.reset_link,
        TokenPurpose.EMAIL_VERIFY.value: settings.verify_link,
    }
    render = functools.partial(render_mail, key=account_key, links=links)
    return Container(
        settings=settings,
        users=users,
        auth=auth,
        recovery=recovery,
        audit=audit,
        keys=keys,
        health=HealthService(probes, lifecycle),
        metrics=metrics,
        cache=cache,
        jobs=_jobs(outbox, recovery, audit, clock, overrides.get("mailer") or _mailer(settings), render, counters),
        lifecycle=lifecycle,
        stack=stack,
    )


def _jobs(
    outbox: OutboxStore,
    jobs: AuthJobs,
    audit: AuditService,
    clock: Clock,
    mailer: Mailer | None,
    render: Renderer,
    counters: Counters,
) -> tuple[Job, ...]:
    """The outbox relay (requests for reset and verification mails; mail, when a mailer is configured)
    and the hourly housekeeping (audit retention, delivered outbox messages)."""
    handlers: dict[str, Handler] = {
        RESET_REQUESTED: _requested(jobs.issue_password_reset),
        VERIFICATION_REQUESTED: _requested(jobs.issue_verification),
    }
    if mailer is not None:
        handlers["mail"] = MailDelivery(mailer, render)

    async def housekeeping() -> None:
        await audit.prune()
        await outbox.prune(clock.now() - DELIVERED_KEPT)
        if isinstance(counters, SqlCounters | RemoteCounters):
            await counters.prune(clock.now())

    relay = OutboxRelay(outbox, handlers, clock, undelivered=() if mailer is not None else ("mail",))
    return relay, Every("housekeeping", 3600, housekeeping)


def _policy(settings: Settings, name: str) -> Policy:
    return Policy.parse(name, getattr(settings, f"limit_{name}"))


def _metrics(settings: Settings, stack: contextlib.AsyncExitStack) -> Metrics:
    """Prometheus when a metrics port is configured (the runner serves it), else nothing recorded at all."""
    if settings.metrics_port is None:
        return NoMetrics()
    # Imported only when wanted: processes without metrics never load prometheus_client.
    from py_app.infra.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics()
    stack.callback(metrics.close)
    return metrics


def _counters(
    settings: Settings, engine: AsyncEngine | None, stack: contextlib.AsyncExitStack, metrics: Metrics
) -> Counters:
    """Counters every process that serves requests shares: Redis when configured (this process's own
    while it is down); else this process's own when it is the only one (one worker on SQLite); else the
    database."""
    if settings.redis_url:
        redis = create_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        return FailoverCounters(RedisCounters(redis, settings.redis_prefix), InProcessCounters(), metrics)
    if engine is None or (engine.url.get_backend_name() == "sqlite" and settings.workers == 1):
        return InProcessCounters()
    return SqlCounters(engine)


def _requested(issue: Callable[[str, str], Awaitable[None]]) -> Handler:
    async def handle(payload: Mapping[str, Any]) -> None:
        await issue(str(payload["email"]), str(payload.get("ip", "")))

    return handle


def _mailer(settings: Settings) -> Mailer | None:
    return SmtpMailer(settings.smtp_url, settings.mail_from) if settings.smtp_url else None


def _access_tokens(
    settings: Settings, secret: bytes, stack: contextlib.AsyncExitStack, overrides: Overrides
) -> tuple[AccessTokens, PublishedKeys]:
    """HS256 signs with the configured secret, as it always has; EdDSA with the key ring, followed while serving."""
    if "tokens" in overrides:
        return overrides["tokens"], overrides.get("keys") or NoPublishedKeys(settings.jwks_max_age)

    def adapter(ring: KeyRing) -> JwtAccessTokens:
        return JwtAccessTokens(
            ring,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl=settings.access_token_ttl,
            jwks_max_age=settings.jwks_max_age,
        )

    if settings.jwt_algorithm == "HS256":
        tokens = adapter(secret_ring(secret))
        return tokens, overrides.get("keys") or tokens
    store = KeyRingStore(settings.effective_jwt_keys_dir)
    ring = _key_ring(settings, store)
    try:
        tokens = adapter(ring)
    except KeyRingError as exc:
        raise SettingsError(_keys_problem(settings, exc)) from None
    watcher = KeyRingWatcher(store, tokens.use, ring=ring, interval=settings.jwt_keys_check_interval)
    watcher.start()
    stack.callback(watcher.close)
    return tokens, overrides.get("keys") or tokens


def _key_ring(settings: Settings, store: KeyRingStore) -> KeyRing:
    """The ring in the keys directory; development makes its first key once (race-free), production never does."""
    try:
        if settings.env == "development" and not store.exists():
            return store.create(KeyRing(settings.jwt_algorithm, (new_key(settings.jwt_algorithm, int(time.time())),)))
        ring = store.load()
    except (KeyRingError, OSError) as exc:
        raise SettingsError(_keys_problem(settings, exc)) from None
    if ring.alg != settings.jwt_algorithm:
        raise SettingsError(f"ARCANA_JWT_ALGORITHM is {settings.jwt_algorithm} but {store.path} holds {ring.alg} keys")
    store.warn_if_exposed()
    return ring


def _keys_problem(settings: Settings, exc: Exception) -> str:
    detail = str(exc) if isinstance(exc, KeyRingError) else f"{settings.effective_jwt_keys_dir}: {exc}"
    return f"ARCANA_JWT_KEYS_DIR: {detail}" if settings.jwt_keys_dir else detail


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


def _changes(settings: Settings, engine: AsyncEngine | None, stack: contextlib.AsyncExitStack) -> ChangeCounter | None:
    """The database's commit counter where it has one (a SQLite file) and caching is on: what lets an
    in-process cache see every worker's and process's writes (the session cache and the user records')."""
    if settings.session_cache_ttl <= 0 or engine is None:
        return None
    counter = change_counter(engine)
    if counter is not None:
        stack.callback(counter.close)
    return counter


def _session_cache(
    settings: Settings, engine: AsyncEngine | None, stack: contextlib.AsyncExitStack, changes: ChangeCounter | None
) -> SessionCache:
    """A cache is only correct where its invalidation reaches every process that serves requests.

    On a SQLite file every process's commits move the file's change counter, so an in-process cache
    stamped with it is correct with any number of workers (and the CLI writing beside them). An
    in-memory SQLite database has one process by definition. A network database means other replicas
    may be revoking sessions: the cache is shared in Redis when one is configured (every replica and worker
    sees every invalidation there), and there is none otherwise. A layered service tier has no engine (the
    repository tier owns the database) but runs every service, so every invalidation: Redis, or none.
    """
    if settings.session_cache_ttl <= 0:
        return NoSessionCache()
    if changes is not None:
        return InProcessSessionCache(settings.session_cache_ttl, changes=changes)
    if engine is not None and engine.url.get_backend_name() == "sqlite" and settings.workers == 1:
        return InProcessSessionCache(settings.session_cache_ttl)  # in-memory SQLite: one process by definition
    if settings.redis_url:
        # A client of its own with shorter timeouts: a lookup that fails falls back to the database, so
        # waiting longer for Redis would only slow the request.
        client = create_redis(settings.redis_url, timeout=0.5)
        stack.push_async_callback(client.aclose)
        return RedisSessionCache(client, settings.redis_prefix, settings.session_cache_ttl, settings.db_timeout)
    return NoSessionCache()
