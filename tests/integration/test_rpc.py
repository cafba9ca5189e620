from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from py_app import __version__
from py_app._proto.arcana.v1 import info_pb2, info_pb2_grpc
from py_app.bootstrap import Container, build_edge
from py_app.config import Settings
from py_app.entrypoints import rpc
from py_app.entrypoints.rpc_support import ServiceGuard
from py_app.infra import migrations
from py_app.infra.security import core_version

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def container(make_settings: Callable[..., Settings]) -> AsyncIterator[Container]:
    settings = make_settings()
    await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)  # else not SERVING: no schema
    built = build_edge(settings)
    yield built
    await built.aclose()


@pytest.mark.req("SRS-008")
async def test_health_check_and_watch_follow_the_lifecycle(container: Container) -> None:
    server = await rpc.start_server(container, "127.0.0.1", 0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        checked = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert checked.status == SERVING
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        first = await watch.read()
        assert first.status == SERVING
        stopping = asyncio.create_task(server.stop(grace=1))
        second = await watch.read()
        assert second.status == NOT_SERVING
        await stopping


@pytest.mark.req("SRS-008")
async def test_unknown_service_is_not_found(container: Container) -> None:
    server = await rpc.start_server(container, "127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5
                )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(0)


@pytest.mark.req("SRS-148")
async def test_health_list_answers_the_statuses_the_server_keeps(container: Container) -> None:
    server = await rpc.start_server(container, "127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            listed = await health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=5)
        assert {name: answer.status for name, answer in listed.statuses.items()} == {"": SERVING}
    finally:
        await server.stop(0)


@pytest.mark.req("SRS-013")
async def test_info_reports_the_loaded_rust_core(container: Container) -> None:
    async with (
        rpc.serving(container, "127.0.0.1", 0) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        info = await info_pb2_grpc.InfoServiceStub(channel).GetInfo(info_pb2.GetInfoRequest(), timeout=5)
    assert info.version == __version__
    assert info.rust_core_version == core_version()
    assert info.rust_core_version.count(".") == 2


async def test_reflection_lists_the_services_in_development(container: Container) -> None:
    async with (
        rpc.serving(container, "127.0.0.1", 0) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(timeout=5)
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        answer = await call.read()
        await call.done_writing()
    names = {service.name for service in answer.list_services_response.service}
    assert {"arcana.v1.InfoService", "grpc.health.v1.Health"} <= names


async def test_a_taken_port_is_a_clear_error(container: Container) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(OSError, match="cannot bind gRPC"):
            await rpc.start_server(container, "127.0.0.1", port)


def _details(error: grpc.aio.AioRpcError) -> tuple[str, list[str], int | None]:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None
    reason, fields, retry = "", [], None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [violation.field for violation in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info_retry = error_details_pb2.RetryInfo()
            detail.Unpack(info_retry)
            retry = info_retry.retry_delay.seconds
    return reason, fields, retry


@pytest.mark.req("SRS-062")
async def test_errors_map_to_codes_with_rich_details(container: Container) -> None:
    from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
    from py_app.infra import migrations

    await asyncio.to_thread(migrations.upgrade, container.settings.effective_database_url)
    async with (
        rpc.serving(container, "127.0.0.1", 0) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await auth.Register(auth_pb2.RegisterRequest(username="x", email="nope", password="short"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await auth.Me(auth_pb2.MeRequest(), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await auth.Me(auth_pb2.MeRequest(), metadata=(("authorization", "Bearer not.a.jwt"),), timeout=5)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(invalid.value)[:2] == ("invalid_input", ["username", "email", "password"])
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _details(anonymous.value)[0] == "unauthenticated"
    assert garbage.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.req("SRS-062")
def test_rate_limits_carry_retry_info() -> None:
    from google.rpc import error_details_pb2

    from py_app.core.errors import RateLimited
    from py_app.infra.rpc_errors import to_status

    status = to_status(RateLimited("slow down", retry_after=7))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    from google.rpc import status_pb2

    decoded = status_pb2.Status.FromString(details)
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in decoded.details if detail.Is(retry.DESCRIPTOR))
    assert retry.retry_delay.seconds == 7


@pytest.mark.req("SRS-064")
async def test_oversized_messages_are_refused_and_deadlines_end_calls(container: Container) -> None:
    from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc

    async with (
        rpc.serving(container, "127.0.0.1", 0) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as oversized:
            await auth.Login(auth_pb2.LoginRequest(username_or_email="x" * (5 * 1024 * 1024)), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await auth.Login(auth_pb2.LoginRequest(username_or_email="a", password="b"), timeout=0.000001)
    assert oversized.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.req("SDD-265")
async def test_the_guard_wraps_each_method_once_not_on_every_call(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapped: list[str] = []
    wrap = ServiceGuard.wrap

    def counting(self: ServiceGuard, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        wrapped.append(method)
        return wrap(self, method, handler)

    monkeypatch.setattr(ServiceGuard, "wrap", counting)
    async with (
        rpc.serving(container, "127.0.0.1", 0) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        at_start = len(wrapped)
        stub = info_pb2_grpc.InfoServiceStub(channel)
        answers = [await stub.GetInfo(info_pb2.GetInfoRequest(), timeout=5) for _ in range(5)]
        checked = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert [answer.version for answer in answers] == [__version__] * 5
    assert checked.status == SERVING
    assert "/arcana.v1.InfoService/GetInfo" in wrapped[:at_start]
    assert "/grpc.health.v1.Health/Check" in wrapped[:at_start]
    assert wrapped[at_start:] == []  # six calls, no wrapping: the handlers were guarded as they registered
