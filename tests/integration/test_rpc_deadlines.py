"""A deadline a gRPC call's work sets for itself (the database's, Redis's socket timeouts) bounds that work,
and the caller gets the work's status: never a cancelled call with the work running on past its deadline.

``asyncio.timeout`` binds the task current when it is entered, so the work must run as its own task from
its first step: started on the call's task and moved to another only once it waits, the deadline would
cancel the call instead (a version of the guard did that; this is the test it lacked)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from py_app.core.errors import Unavailable
from py_app.core.identity import Principal
from py_app.entrypoints.rpc_support import GuardedRegistration, ServiceGuard

pytestmark = pytest.mark.req("SRS-161")

METHOD = "/arcana.v1.InfoService/GetInfo"  # a public method: no token needed


async def no_authentication(*_args: Any, **_kwargs: Any) -> Principal:
    raise AssertionError("a public method authenticates no one")


async def test_a_deadline_entered_before_the_first_wait_bounds_the_work_and_answers_unavailable() -> None:
    outcome: list[str] = []

    async def slow_database(_request: bytes, _context: Any) -> bytes:
        try:
            async with asyncio.timeout(0.05):  # entered before the work first waits, as db.reading's is
                await asyncio.sleep(2)
        except TimeoutError:
            outcome.append("timed out")
            raise Unavailable("The database did not answer in time.") from None
        outcome.append("ran past its deadline")
        return b""

    server = grpc.aio.server()
    handlers = {"GetInfo": grpc.unary_unary_rpc_method_handler(slow_database)}
    GuardedRegistration(server, ServiceGuard(no_authentication)).add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("arcana.v1.InfoService", handlers)]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(METHOD, request_serializer=bytes, response_deserializer=bytes)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(b"", timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert outcome == ["timed out"]
    finally:
        await server.stop(None)
