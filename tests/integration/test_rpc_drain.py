"""The gRPC server's drain: calls that finish within the grace are a clean stop; calls still running when it
runs out are cut short, and the stop says how many (the runners turn that into exit 1, tests/e2e)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from py_app.bootstrap import Container, build_edge
from py_app.config import Settings
from py_app.entrypoints import rpc
from py_app.infra import migrations
from tests.fakes import PlainHasher

pytestmark = pytest.mark.req("SRS-166")
GRACE = 1.0


class HeldHasher(PlainHasher):
    """Hashing waits at a gate until released: a call in flight for as long as the test wants."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def hash(self, password: str) -> str:
        self.reached.set()
        await self.release.wait()
        return await super().hash(password)


@pytest.fixture
def hasher() -> HeldHasher:
    return HeldHasher()


@pytest.fixture
async def container(make_settings: Callable[..., Settings], hasher: HeldHasher) -> AsyncIterator[Container]:
    settings = make_settings()
    await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)
    async with build_edge(settings, hasher=hasher) as built:
        yield built


async def register(target: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(target) as channel:
        request = auth_pb2.RegisterRequest(username="held", email="held@example.com", password="correct horse battery")
        try:
            await auth_pb2_grpc.AuthServiceStub(channel).Register(request, timeout=30)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_a_call_that_finishes_within_the_grace_is_a_clean_stop(container: Container, hasher: HeldHasher) -> None:
    server = await rpc.start_server(container, "127.0.0.1", 0)
    call = asyncio.create_task(register(f"127.0.0.1:{server.port}"))
    await hasher.reached.wait()
    stopping = asyncio.create_task(server.stop(GRACE))
    await asyncio.sleep(GRACE / 4)
    hasher.release.set()
    assert await stopping == 0
    assert await call == grpc.StatusCode.OK


async def test_a_call_still_running_when_the_grace_runs_out_is_counted_and_cut_short(
    container: Container, hasher: HeldHasher
) -> None:
    server = await rpc.start_server(container, "127.0.0.1", 0)
    call = asyncio.create_task(register(f"127.0.0.1:{server.port}"))
    await hasher.reached.wait()
    began = asyncio.get_running_loop().time()
    assert await server.stop(GRACE) == 1
    assert asyncio.get_running_loop().time() - began < GRACE + 3
    assert await call != grpc.StatusCode.OK
    hasher.release.set()  # too late: the work was cancelled, nothing of it runs on
    await asyncio.sleep(0.2)
    path = container.settings.effective_database_url.split("///", 1)[1]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
