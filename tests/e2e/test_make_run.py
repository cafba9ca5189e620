"""The service started exactly as the README starts it (`make run`), called over REST and gRPC, then stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from py_app._proto.arcana.v1 import info_pb2, info_pb2_grpc
from tests.e2e.support import STOP_SECONDS, Server, migrate, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Server]:
    server = start(["make", "--no-print-directory", "run"], tmp_path)
    yield server
    server.stop()


async def grpc_calls(target: str) -> tuple[int, str]:
    async with grpc.aio.insecure_channel(target) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        info = await info_pb2_grpc.InfoServiceStub(channel).GetInfo(info_pb2.GetInfoRequest(), timeout=5)
    return health.status, info.rust_core_version


async def watch_until_closed(target: str, started: asyncio.Event) -> list[int]:
    statuses = []
    async with grpc.aio.insecure_channel(target) as channel:
        call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=STOP_SECONDS)
        try:
            async for response in call:
                statuses.append(response.status)
                started.set()
        except grpc.aio.AioRpcError:
            pass  # the server closing the stream at the very end is expected
    return statuses


@pytest.mark.req("SRS-001", "SRS-009", "SRS-013", "SDD-004")
def test_make_run_serves_rest_and_grpc_and_stops_cleanly_on_sigterm(make_run: Server, tmp_path: Path) -> None:
    make_run.wait_ready()
    assert (tmp_path / "var" / "arcana.db").exists(), "make run migrates the SQLite database under ARCANA_DATA_DIR"
    assert (tmp_path / "var" / "jwt_secret").exists()
    assert httpx.get(f"{make_run.http}/health/live", timeout=5).json() == {"status": "ok"}
    ready = httpx.get(f"{make_run.http}/health/ready", timeout=5).json()
    assert ready == {"status": "ok", "checks": {"draining": "ok", "database": "ok", "schema": "ok"}}
    status, rust_version = asyncio.run(grpc_calls(make_run.grpc))
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert rust_version

    async def stop_while_watching() -> list[int]:
        started = asyncio.Event()
        watcher = asyncio.create_task(watch_until_closed(make_run.grpc, started))
        await asyncio.wait_for(started.wait(), 5)
        os.kill(make_run.serve_pid(), signal.SIGTERM)
        return await watcher

    began = time.monotonic()
    statuses = asyncio.run(stop_while_watching())
    code = make_run.process.wait(STOP_SECONDS)
    elapsed = time.monotonic() - began
    assert code == 0, make_run.output()[-3000:]
    assert elapsed < STOP_SECONDS
    assert statuses[0] == health_pb2.HealthCheckResponse.SERVING
    assert statuses[-1] == health_pb2.HealthCheckResponse.NOT_SERVING, "in-flight streams see the drain"
    assert "Traceback" not in make_run.output()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{make_run.http}/health/live", timeout=2)


@pytest.mark.req("SRS-009")
def test_ctrl_c_stops_the_server_cleanly(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole foreground process group, as a terminal sends it."""
    migrate(tmp_path)
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, ARCANA_WORKERS="2")
    try:
        server.wait_started(workers=2)
        os.killpg(server.process.pid, signal.SIGINT)
        assert server.process.wait(STOP_SECONDS) == 0, server.output()[-3000:]
        assert "Traceback" not in server.output()
    finally:
        server.stop()


@pytest.mark.req("SRS-001")
def test_arcana_variables_reach_the_service_and_bad_ones_stop_it(tmp_path: Path) -> None:
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, ARCANA_ENV="production")
    try:
        assert server.process.wait(30) == 2
        assert "ARCANA_JWT_SECRET is required when ARCANA_ENV=production" in server.output()
    finally:
        server.stop()


@pytest.mark.req("SRS-063", "SDD-004")
def test_grpc_is_served_by_every_worker(tmp_path: Path) -> None:
    """With ARCANA_WORKERS=2 both worker processes answer gRPC (SO_REUSEPORT spreads connections)."""
    migrate(tmp_path)
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, ARCANA_WORKERS="2")

    async def pids(deadline: float) -> set[int]:
        # Readiness means one worker is up; the other may still be starting, so keep connecting
        # (each new channel is a new TCP connection the kernel places) until both answer or time is up.
        seen: set[int] = set()
        options = [("grpc.use_local_subchannel_pool", 1)]
        while len(seen) < 2 and time.monotonic() < deadline:
            async with grpc.aio.insecure_channel(server.grpc, options=options) as channel:
                info = await info_pb2_grpc.InfoServiceStub(channel).GetInfo(info_pb2.GetInfoRequest(), timeout=5)
                seen.add(info.pid)
        return seen

    try:
        server.wait_ready()
        served_by = asyncio.run(pids(time.monotonic() + 60))
        workers = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
        assert len(served_by) == 2, served_by
        assert served_by == {int(pid) for pid in workers}
    finally:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(STOP_SECONDS)
        server.stop()
