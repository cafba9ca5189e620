"""One runner per process role (ARCANA_ROLE): real processes, started as `python -m py_app serve` starts them."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, info_pb2, info_pb2_grpc
from tests.e2e.support import STOP_SECONDS, Server, migrate, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180), pytest.mark.req("SRS-081")]
OPTIONS = [("grpc.use_local_subchannel_pool", 1)]  # a new channel is a new connection


async def serving(target: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            async with grpc.aio.insecure_channel(target, options=OPTIONS) as channel:
                answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.2)
    pytest.fail(f"gRPC at {target} not SERVING in time")


async def pids(target: str, want: int, deadline: float) -> set[int]:
    seen: set[int] = set()
    while len(seen) < want and time.monotonic() < deadline:
        async with grpc.aio.insecure_channel(target, options=OPTIONS) as channel:
            info = await info_pb2_grpc.InfoServiceStub(channel).GetInfo(info_pb2.GetInfoRequest(), timeout=5)
            seen.add(info.pid)
    return seen


async def register_and_me(target: str) -> str:
    name = f"role{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(target) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        request = auth_pb2.RegisterRequest(username=name, email=f"{name}@example.com", password="correct horse battery")
        tokens = await auth.Register(request, timeout=10)
        me = await auth.Me(auth_pb2.MeRequest(), metadata=[("authorization", f"Bearer {tokens.access_token}")])
    return str(me.username)


def stop(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(STOP_SECONDS)
    finally:
        server.stop()


def test_the_grpc_role_serves_the_api_from_every_worker_and_no_rest(tmp_path: Path) -> None:
    migrate(tmp_path)
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, ARCANA_ROLE="grpc", ARCANA_WORKERS="2")
    try:
        asyncio.run(serving(server.grpc, time.monotonic() + 60))
        served_by = asyncio.run(pids(server.grpc, 2, time.monotonic() + 60))
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
        assert len(served_by) == 2, served_by
        assert served_by <= {int(pid) for pid in children}
        assert asyncio.run(register_and_me(server.grpc)).startswith("role")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.http}/health/live", timeout=2)
        assert stop(server) == 0, server.output()[-2000:]
    finally:
        server.stop()
    assert "Traceback" not in server.output()


def test_the_worker_role_starts_and_stops_cleanly(tmp_path: Path) -> None:
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, ARCANA_ROLE="worker")
    try:
        deadline = time.monotonic() + 30
        while "worker started" not in server.output() and time.monotonic() < deadline:
            assert server.process.poll() is None, server.output()
            time.sleep(0.1)
        assert "worker started" in server.output()
        assert stop(server) == 0, server.output()[-2000:]
    finally:
        server.stop()
    assert "worker stopped" in server.output()
    assert "Traceback" not in server.output()
