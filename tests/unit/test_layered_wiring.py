"""The layered mode's wiring: settings, the runner per (mode, role), and the internal envelope at both ends."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Protocol

import grpc
import pytest

from py_app import bootstrap
from py_app._proto.arcana.internal.v1 import ports_pb2, ports_pb2_grpc
from py_app.audit.ports import AuditStore, AuditUseCases
from py_app.auth.ports import AccountReplica, AccountTokenStore, AuthUseCases, RecoveryUseCases, SessionStore
from py_app.config import SettingsError, load_settings
from py_app.core.errors import FieldError, Internal, InvalidInput, NotFound, RateLimited
from py_app.entrypoints import serve, tier
from py_app.infra import remote, remote_services, remote_stores, request_id
from py_app.infra.cache import NoSessionCache, RedisSessionCache
from py_app.infra.counters import CounterStore
from py_app.infra.outbox import OutboxStore
from py_app.infra.service_auth import ServiceCredential
from py_app.users.ports import AccountWrites, UserStore, UserUseCases

CREDENTIAL = ServiceCredential(b"s" * 32, "edge")  # the echo servers here check none
ADAPTERS = {
    remote_stores.RemoteUserStore: UserStore,
    remote_stores.RemoteSessionStore: SessionStore,
    remote_stores.RemoteAccountTokenStore: AccountTokenStore,
    remote_stores.RemoteAuditStore: AuditStore,
    remote_stores.RemoteOutbox: OutboxStore,
    remote_stores.RemoteCounters: CounterStore,
    remote_stores.RemoteAccountWrites: AccountWrites,
    remote_stores.RemoteAccountReplica: AccountReplica,
    remote_services.RemoteUserUseCases: UserUseCases,
    remote_services.RemoteAuthUseCases: AuthUseCases,
    remote_services.RemoteRecoveryUseCases: RecoveryUseCases,
    remote_services.RemoteAuditUseCases: AuditUseCases,
}


@pytest.mark.req("SDD-190")
@pytest.mark.parametrize(("adapter", "protocol"), list(ADAPTERS.items()), ids=lambda item: item.__name__)
def test_each_grpc_client_adapter_spells_exactly_its_ports_methods_with_their_signatures(
    adapter: type[remote.RemotePort], protocol: type
) -> None:
    wanted = {name for name in dir(protocol) if not name.startswith("_")}
    spelled = {name for name in vars(adapter) if not name.startswith("_") and name not in ("protocol", "reads")}
    assert spelled == wanted
    assert adapter.protocol is protocol
    for name in wanted:
        assert inspect.signature(getattr(adapter, name)) == inspect.signature(getattr(protocol, name)), name


@pytest.mark.req("SRS-190")
def test_the_mode_defaults_to_monolithic_and_each_mode_accepts_only_its_roles() -> None:
    assert load_settings({}).mode == "monolithic"
    layered = load_settings({"ARCANA_MODE": "layered", "ARCANA_SERVICE_TARGET": "127.0.0.1:9"})
    assert (layered.mode, layered.role) == ("layered", "edge")
    assert load_settings({"ARCANA_MODE": "layered", "ARCANA_ROLE": "repository"}).role == "repository"
    with pytest.raises(SettingsError, match="ARCANA_ROLE=worker is not a role of ARCANA_MODE=layered"):
        load_settings({"ARCANA_MODE": "layered", "ARCANA_ROLE": "worker"})

    targets = {"ARCANA_AUTH_TARGET": "127.0.0.1:9", "ARCANA_USERS_TARGET": "127.0.0.1:10"}
    micro = load_settings({"ARCANA_MODE": "microservices", **targets})
    assert (micro.mode, micro.role, micro.auth_target, micro.users_target) == (
        "microservices",
        "edge",
        "127.0.0.1:9",
        "127.0.0.1:10",
    )
    with pytest.raises(SettingsError, match="ARCANA_ROLE=repository is not a role of ARCANA_MODE=microservices"):
        load_settings({"ARCANA_MODE": "microservices", "ARCANA_ROLE": "repository", **targets})
    for role, missing in (("edge", "AUTH"), ("auth", "USERS"), ("users", "AUTH")):
        with pytest.raises(SettingsError, match=f"ARCANA_{missing}_TARGET is required for ARCANA_ROLE={role}"):
            load_settings({"ARCANA_MODE": "microservices", "ARCANA_ROLE": role})


@pytest.mark.req("SRS-190")
def test_the_runner_is_chosen_by_mode_and_role() -> None:
    repository = bootstrap.runner(load_settings({"ARCANA_MODE": "layered", "ARCANA_ROLE": "repository"}))
    service = bootstrap.runner(
        load_settings({"ARCANA_MODE": "layered", "ARCANA_ROLE": "service", "ARCANA_REPOSITORY_TARGET": "h:1"})
    )
    assert isinstance(repository, functools.partial)
    assert isinstance(service, functools.partial)
    assert (repository.func, repository.args) == (tier.run, ("Repository", bootstrap.build_repository))
    assert (service.func, service.args) == (tier.run, ("Services", bootstrap.build_service))
    assert bootstrap.runner(load_settings({"ARCANA_MODE": "layered", "ARCANA_SERVICE_TARGET": "h:1"})) is serve.serve
    assert bootstrap.runner(load_settings({})) is serve.serve


@pytest.mark.req("SRS-220", "SRS-226")
def test_the_microservices_runners_serve_each_service_to_its_callers_only() -> None:
    def runner(role: str, **targets: str) -> object:
        return bootstrap.runner(load_settings({"ARCANA_MODE": "microservices", "ARCANA_ROLE": role, **targets}))

    auth, users = runner("auth", ARCANA_USERS_TARGET="h:1"), runner("users", ARCANA_AUTH_TARGET="h:2")
    assert isinstance(auth, functools.partial)
    assert isinstance(users, functools.partial)
    assert (auth.func, auth.args, auth.keywords) == (
        tier.run,
        ("Services", bootstrap.build_auth_service),
        {"callers": frozenset({"edge", "users"})},
    )
    assert (users.func, users.args, users.keywords) == (
        tier.run,
        ("Services", bootstrap.build_users_service),
        {"callers": frozenset({"edge", "auth"})},
    )
    assert runner("edge", ARCANA_AUTH_TARGET="h:2", ARCANA_USERS_TARGET="h:1") is serve.serve


class Echo(Protocol):
    """A port for these tests: what the serving end saw, and errors it raises."""

    async def seen(self, at: datetime, *tags: str, loud: bool = False) -> tuple[float, str, list[str]]: ...

    async def fail(self, kind: str) -> None: ...


class EchoAdapter:
    def __init__(self, onward: remote.Target) -> None:
        self._onward = onward

    async def seen(self, at: datetime, *tags: str, loud: bool = False) -> tuple[float, str, list[str]]:
        # The deadline an onward call would get, the request id bound here, and the arguments as they arrived.
        words = [at.isoformat(), *tags, str(loud)]
        return self._onward.timeout(), request_id.current() or "", words

    async def fail(self, kind: str) -> None:
        if kind == "rate":
            raise RateLimited("slow down", retry_after=7)
        if kind == "input":
            raise InvalidInput("bad", (FieldError("email", "is not an email"),))
        if kind == "defect":
            raise KeyError("a bug")
        raise NotFound("no such thing")


class RemoteEcho(remote.RemotePort):
    protocol = Echo

    async def seen(self, at: datetime, *tags: str, loud: bool = False) -> tuple[float, str, list[str]]:
        found: tuple[float, str, list[str]] = await self._call("seen", at, *tags, loud=loud)
        return found

    async def fail(self, kind: str) -> None:
        await self._call("fail", kind)


@pytest.fixture
async def echo_address() -> AsyncIterator[str]:
    server = grpc.aio.server()
    # Never called: only its deadline is read.
    onward = remote.Target("127.0.0.1:9", "Repository", timeout=60.0, credential=CREDENTIAL)
    remote.add_servicer(server, "Repository", dict([remote.served(Echo, EchoAdapter(onward))]))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await onward.close()
        await server.stop(None)


@pytest.fixture
async def echo(echo_address: str) -> AsyncIterator[RemoteEcho]:
    target = remote.Target(echo_address, "Repository", timeout=3.0, credential=CREDENTIAL)
    try:
        yield RemoteEcho(target)
    finally:
        await target.close()


@pytest.mark.req("SDD-191")
async def test_an_internal_call_carries_its_arguments_the_request_id_and_a_deadline_the_next_hop_inherits(
    echo: RemoteEcho,
) -> None:
    at = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    token = request_id.bind("req-layered-1")
    try:
        remaining, seen_id, words = await echo.seen(at, "a", "b", loud=True)
    finally:
        request_id.unbind(token)
    assert seen_id == "req-layered-1"
    assert words == [at.isoformat(), "a", "b", "True"]
    # The caller gave 3 s; the onward call inherits what is left of them, not its own 60 s.
    assert 0 < remaining <= 3.0


@pytest.mark.req("SRS-191")
async def test_domain_errors_raised_behind_the_boundary_arrive_as_the_same_errors(echo: RemoteEcho) -> None:
    with pytest.raises(RateLimited) as limited:
        await echo.fail("rate")
    assert (limited.value.message, limited.value.retry_after) == ("slow down", 7)
    with pytest.raises(InvalidInput) as invalid:
        await echo.fail("input")
    assert invalid.value.errors == (FieldError("email", "is not an email"),)
    with pytest.raises(NotFound, match="no such thing"):
        await echo.fail("missing")


@pytest.mark.req("SRS-191")
async def test_a_defect_behind_the_boundary_is_internal_and_logged_there(
    echo: RemoteEcho, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(Internal):
        await echo.fail("defect")
    logged = [(record.message, record.exc_info is not None) for record in caplog.records]
    # The serving end logs the defect with its traceback; the calling end only that the tier failed.
    assert logged == [("internal call failed", True), ("internal tier failed", False)]


@pytest.mark.req("SRS-191")
@pytest.mark.parametrize(
    ("port", "method", "arguments", "code"),
    [
        ("Echo", "fail", b"not json", grpc.StatusCode.INVALID_ARGUMENT),
        ("Echo", "fail", b'{"kind": 3}', grpc.StatusCode.INVALID_ARGUMENT),
        ("Echo", "fail", b'{"kind": "x", "extra": 1}', grpc.StatusCode.INVALID_ARGUMENT),
        ("Echo", "__init__", b"{}", grpc.StatusCode.UNIMPLEMENTED),
        ("Nothing", "fail", b"{}", grpc.StatusCode.UNIMPLEMENTED),
    ],
)
async def test_a_call_that_does_not_match_a_ports_method_is_refused_without_running_anything(
    echo_address: str, port: str, method: str, arguments: bytes, code: grpc.StatusCode
) -> None:
    async with grpc.aio.insecure_channel(echo_address) as channel:
        call = ports_pb2_grpc.RepositoryStub(channel).Call
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(ports_pb2.CallRequest(port=port, method=method, arguments=arguments), timeout=5)
    assert refused.value.code() == code


@pytest.mark.req("SDD-193")
async def test_a_tier_without_a_database_caches_sessions_only_in_a_shared_redis() -> None:
    """The layered service tier runs every service (so every invalidation) but owns no engine."""
    choose = bootstrap._session_cache  # noqa: SLF001 - the composition root's one choice, checked alone
    async with contextlib.AsyncExitStack() as stack:
        with_redis = load_settings({"ARCANA_REDIS_URL": "redis://127.0.0.1:1/0"})
        assert isinstance(choose(with_redis, None, stack, None), RedisSessionCache)
        assert isinstance(choose(load_settings({}), None, stack, None), NoSessionCache)
        off = load_settings({"ARCANA_REDIS_URL": "redis://127.0.0.1:1/0", "ARCANA_SESSION_CACHE_TTL": "0"})
        assert isinstance(choose(off, None, stack, None), NoSessionCache)
