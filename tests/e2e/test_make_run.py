"""The service started exactly as the README starts it (`make run`), called over REST and gRPC, then stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from py_app._proto.arcana.v1 import info_pb2, info_pb2_grpc
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 180  # make run may have to build on a cold machine
STOP_SECONDS = 20

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


class Server:
    def __init__(self, process: subprocess.Popen[bytes], http_port: int, grpc_port: int, log: Path) -> None:
        self.process = process
        self.http = f"http://127.0.0.1:{http_port}"
        self.grpc = f"127.0.0.1:{grpc_port}"
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode} before ready:\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"{self.http}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"server not ready within {STARTUP_SECONDS}s:\n{self.output()[-3000:]}")

    def serve_pid(self) -> int:
        """The `python -m py_app serve` process that make runs (make execs it from the recipe shell)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def start(command: list[str], tmp_path: Path, **env: str) -> Server:
    http_port, grpc_port = free_port(), free_port()
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("ARCANA_", "MAKE"))}
    environ.update(
        ARCANA_DATA_DIR=str(tmp_path / "var"),
        ARCANA_HTTP_PORT=str(http_port),
        ARCANA_GRPC_PORT=str(grpc_port),
        ARCANA_SHUTDOWN_GRACE="3",
        **env,
    )
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(process, http_port, grpc_port, log)


def migrate(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "py_app", "migrate"],
        cwd=ROOT,
        env={**os.environ, "ARCANA_DATA_DIR": str(tmp_path / "var")},
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


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
    assert ready == {"status": "ok", "checks": {"draining": "ok", "database": "ok"}}
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
        server.wait_ready()
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
