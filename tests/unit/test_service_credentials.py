"""Internal gRPC closed to the world (issue 13.4): service tokens on a real grpc.aio server, and no password hash
in what the service tier answers the edge."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc
import msgspec
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from py_app._proto.arcana.internal.v1 import ports_pb2, ports_pb2_grpc
from py_app.config import SettingsError, load_settings
from py_app.core.identity import Principal
from py_app.infra import remote, service_auth
from py_app.infra.remote_services import RemoteUserUseCases
from py_app.infra.service_auth import HEADER, ServiceCredential, ServiceCredentialInterceptor, mint
from py_app.users.models import Page, Role, User, UserQuery
from py_app.users.ports import UserUseCases

SECRET = secrets.token_bytes(32)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
USER = User(id="u-1", username="ada", email="ada@example.com", password_hash=HASH, created_at=NOW, updated_at=NOW)


class Users:
    """The two UserUseCases methods these tests call, each answering values that hold a password hash."""

    async def get(self, actor: Principal, user_id: str) -> User:
        return USER

    async def search(self, actor: Principal, query: UserQuery) -> Page:
        return Page(items=[USER, USER], total=2, page=1, per_page=2)


@pytest.fixture
async def services() -> AsyncIterator[str]:
    """A Services tier as entrypoints/tier.py builds it: the credential check, health, the envelope."""
    server = grpc.aio.server(interceptors=[ServiceCredentialInterceptor(SECRET, service_auth.CALLERS["Services"])])
    probes = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(probes, server)
    remote.add_servicer(server, "Services", dict([remote.served(UserUseCases, Users())]))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await probes.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


def _get_request() -> ports_pb2.CallRequest:
    method = remote.port_methods(UserUseCases)["get"]
    actor = Principal(user_id="u-0", role=Role.ADMIN, session_id="s-0")
    return ports_pb2.CallRequest(
        port="UserUseCases", method="get", arguments=method.encode_arguments((actor, "u-1"), {})
    )


async def _raw_call(address: str, token: str | None) -> ports_pb2.CallReply:
    async with grpc.aio.insecure_channel(address) as channel:
        metadata = ((HEADER, token),) if token is not None else ()
        reply: ports_pb2.CallReply = await ports_pb2_grpc.ServicesStub(channel).Call(
            _get_request(), metadata=metadata, timeout=10
        )
    return reply


@pytest.mark.req("SRS-197")
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: None, "missing"),
        (lambda: "", "missing"),
        (lambda: "not-a-token", "malformed"),
        (lambda: mint(secrets.token_bytes(32), "edge", int(time.time())), "bad signature"),  # another secret
        (lambda: mint(SECRET, "edge", int(time.time())).replace(".edge.", ".eDge."), "bad signature"),  # tampered
        (lambda: mint(SECRET, "edge", int(time.time()) - 120), "expired"),
        (lambda: mint(SECRET, "edge", int(time.time()), lifetime=3600), "bad lifetime"),  # longer than 60 s
        (lambda: mint(SECRET, "edge", int(time.time()) + 600), "bad lifetime"),  # issued in the future
        (lambda: mint(SECRET, "service", int(time.time())), "role not allowed"),  # the repository tier's caller
    ],
    ids=["none", "empty", "malformed", "other-secret", "tampered", "expired", "long-lived", "future", "wrong-role"],
)
async def test_a_call_without_a_valid_service_token_is_unauthenticated_and_logged_without_the_token(
    services: str, make: Callable[[], str | None], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = make()  # minted now, not at collection: the suite may run this many minutes after it imported it
    with caplog.at_level(logging.WARNING, logger="arcana.security"), pytest.raises(grpc.aio.AioRpcError) as refused:
        await _raw_call(services, token)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.details() == "a valid service credential is required"
    events = [record for record in caplog.records if record.message == "authz_fail"]
    assert [(event.__dict__["reason"], event.__dict__["resource"]) for event in events] == [
        (reason, "/arcana.internal.v1.Services/Call")
    ]
    logged = caplog.text + repr([record.__dict__ for record in events])
    assert not token or token not in logged
    assert SECRET.hex() not in logged


@pytest.mark.req("SRS-197")
async def test_a_valid_token_is_served_and_health_needs_none(services: str) -> None:
    reply = await _raw_call(services, ServiceCredential(SECRET, "edge").token())
    assert msgspec.json.decode(reply.result)["id"] == "u-1"
    async with grpc.aio.insecure_channel(services) as channel:
        probe = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert probe.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.req("SRS-197")
def test_the_caller_reuses_its_token_for_half_a_minute_then_mints_a_fresh_one() -> None:
    now = [1_000_000.0]
    credential = ServiceCredential(SECRET, "edge", clock=lambda: now[0])
    first = credential.token()
    now[0] += service_auth.REUSE_SECONDS - 1
    assert credential.token() == first
    now[0] += 1
    second = credential.token()
    assert second != first
    assert service_auth.verify(SECRET, second, {"edge"}, int(now[0]) + service_auth.MAX_LIFETIME - 1) == "edge"
    assert SECRET.hex() not in repr(credential)
    assert first not in repr(credential)


@pytest.mark.req("SRS-198")
async def test_what_the_service_tier_answers_the_edge_carries_no_password_hash(services: str) -> None:
    token = ServiceCredential(SECRET, "edge").token()
    raw = (await _raw_call(services, token)).result
    assert b"argon2" not in raw
    assert msgspec.json.decode(raw)["password_hash"] == ""
    target = remote.Target(services, "Services", 10.0, credential=ServiceCredential(SECRET, "edge"))
    try:
        actor = Principal(user_id="u-0", role=Role.ADMIN, session_id="s-0")
        users = RemoteUserUseCases(target)
        user = await users.get(actor, "u-1")
        page = await users.search(actor, UserQuery())
    finally:
        await target.close()
    assert user.password_hash == ""
    assert user.username == "ada"
    assert [item.password_hash for item in page.items] == ["", ""]


@pytest.mark.req("SRS-197")
@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"ARCANA_ENV": "production", "ARCANA_JWT_SECRET": "j" * 32, "ARCANA_MODE": "layered"},
            "ARCANA_INTERNAL_SECRET is required when ARCANA_ENV=production in layered mode",
        ),
        (
            {
                "ARCANA_ENV": "production",
                "ARCANA_JWT_SECRET": "j" * 32,
                "ARCANA_MODE": "microservices",
                "ARCANA_AUTH_TARGET": "127.0.0.1:2",
                "ARCANA_USERS_TARGET": "127.0.0.1:3",
            },
            "ARCANA_INTERNAL_SECRET is required when ARCANA_ENV=production in microservices mode",
        ),
        ({"ARCANA_INTERNAL_SECRET": "short"}, "ARCANA_INTERNAL_SECRET must be at least 32 bytes"),
    ],
)
def test_the_internal_secret_is_required_in_production_layered_and_long_enough(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"ARCANA_SERVICE_TARGET": "127.0.0.1:1", **environ})


@pytest.mark.req("SRS-197")
def test_the_internal_secret_never_shows_in_the_settings_repr() -> None:
    settings = load_settings({"ARCANA_INTERNAL_SECRET": "i" * 40})
    assert "i" * 40 not in repr(settings)
    assert "internal_secret='***'" in repr(settings)
