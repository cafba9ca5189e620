"""Bytes that are not the request message, on every RPC of every service the server offers: INVALID_ARGUMENT
with a generic message, never UNKNOWN or INTERNAL, and no traceback in the logs. And work that ends after
its caller's deadline logs nothing at error level."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from py_app._proto.arcana.v1 import audit_pb2, auth_pb2, auth_pb2_grpc, info_pb2, users_pb2
from py_app.bootstrap import Container, build_edge
from py_app.config import Settings
from py_app.entrypoints import rpc
from py_app.infra import migrations
from tests.fakes import PlainHasher

pytestmark = pytest.mark.req("SRS-176")

METHODS: list[MethodDescriptor] = [
    method
    for module, name in (
        (auth_pb2, "AuthService"),
        (users_pb2, "UserService"),
        (audit_pb2, "AuditService"),
        (info_pb2, "InfoService"),
        (health_pb2, "Health"),
        (reflection_pb2, "ServerReflection"),
    )
    for method in module.DESCRIPTOR.services_by_name[name].methods
]
NOT_A_MESSAGE = {
    "bad wire type": b"\xff\xff\xff\x0f garbage",
    "truncated field": b"\x0a\x10abc",  # field 1 says 16 bytes follow; 3 do
    "invalid utf-8 string": b"\x0a\x02\xff\xfe",  # only where field 1 is a string (elsewhere: an unknown field)
}


def _refuses(method: MethodDescriptor, case: str) -> bool:
    first = method.input_type.fields_by_number.get(1)
    return case != "invalid utf-8 string" or (first is not None and first.type == FieldDescriptor.TYPE_STRING)


LEAKS = ("DecodeError", "Error parsing", "Traceback", "google.protobuf", "Wire format")


@pytest.fixture
async def server(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[Container, int]]:
    settings = make_settings()
    await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)
    async with build_edge(settings) as container:
        await container.auth.prepare()
        async with rpc.serving(container, "127.0.0.1", 0) as running:
            yield container, running.port


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


async def _send(channel: grpc.aio.Channel, method: MethodDescriptor, payload: bytes) -> grpc.aio.AioRpcError:
    raw: dict[str, Callable[[bytes], bytes]] = {"request_serializer": bytes, "response_deserializer": bytes}
    path = _path(method)
    try:
        if method.client_streaming:
            call = (channel.stream_stream if method.server_streaming else channel.stream_unary)(path, **raw)
            answer = call(iter([payload]), timeout=5)
        else:
            call = (channel.unary_stream if method.server_streaming else channel.unary_unary)(path, **raw)
            answer = call(payload, timeout=5)
        if method.server_streaming:
            async for _ in answer:
                pass
        else:
            await answer
    except grpc.aio.AioRpcError as error:
        return error
    pytest.fail(f"{path} accepted bytes that are not its request message")


async def _offered(channel: grpc.aio.Channel) -> set[str]:
    """The services the server says it offers (reflection), so a new service cannot go untested."""
    call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(timeout=5)
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    answer = await call.read()
    await call.done_writing()
    return {service.name for service in answer.list_services_response.service}


@pytest.mark.parametrize("case", NOT_A_MESSAGE)
async def test_every_rpc_refuses_what_is_not_its_request_message(
    server: tuple[Container, int], case: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, port = server
    with caplog.at_level(logging.DEBUG):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await _offered(channel) == {method.containing_service.full_name for method in METHODS}
            for method in (method for method in METHODS if _refuses(method, case)):
                error = await _send(channel, method, NOT_A_MESSAGE[case])
                assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (_path(method), error.code(), error.details())
                assert error.details() == "The request message could not be parsed.", _path(method)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert not any(leak in caplog.text for leak in LEAKS), caplog.text[-2000:]


class SlowHasher(PlainHasher):
    """Verifying takes far longer than the caller waits, so every login ends after its caller has gone, however
    loaded the machine (a real argon2id hash takes ~20 ms: a 2 ms deadline sometimes passed before the handler
    even started, and then there was no late work to collect)."""

    def __init__(self) -> None:
        self.started = 0

    async def verify(self, encoded: str, password: str) -> bool:
        self.started += 1
        await asyncio.sleep(LATE_WORK)
        return await super().verify(encoded, password)


class LateWork(logging.Handler):
    """Sets ``all_seen`` once every late call's outcome was collected (noted at debug)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen = 0
        self.all_seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "call finished after its caller left":
            self.seen += 1
            if self.seen >= CALLS:
                self.all_seen.set()


LATE_WORK = 1.5
CALLS = 3


async def test_work_that_ends_after_its_callers_deadline_logs_nothing_at_error_level(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()
    await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)
    hasher, late = SlowHasher(), LateWork()
    logging.getLogger().addHandler(late)
    try:
        with caplog.at_level(logging.DEBUG):
            async with build_edge(settings, hasher=hasher) as container, rpc.serving(container, "127.0.0.1", 0) as up:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{up.port}") as channel:
                    stub = auth_pb2_grpc.AuthServiceStub(channel)
                    request = auth_pb2.LoginRequest(username_or_email="nobody", password="a wrong password")
                    for _ in range(CALLS):
                        with pytest.raises(grpc.aio.AioRpcError) as caught:
                            await stub.Login(request, timeout=LATE_WORK / 3)
                        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
                assert hasher.started >= CALLS  # each call reached the work before its caller gave up
                async with asyncio.timeout(30):  # the shielded work finishes and fails to answer
                    await late.all_seen.wait()
                gc.collect()  # asyncio reports unretrieved task exceptions when the task is collected
                await asyncio.sleep(0.05)
    finally:
        logging.getLogger().removeHandler(late)
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [], [record.getMessage() for record in errors]
