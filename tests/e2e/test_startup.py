"""Start-up fails loudly instead of silently: ports held by another instance, a schema this version cannot use.

Real `python -m py_app serve` processes. A second instance on ports another one holds used to bind them too
(SO_REUSEPORT) and the kernel split connections between two services on two different databases.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from py_app._proto.arcana.v1 import info_pb2, info_pb2_grpc
from tests.conftest import free_port
from tests.e2e.support import STOP_SECONDS, Server, command, migrate, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
SERVE = [sys.executable, "-m", "py_app", "serve"]
EXIT_SECONDS = 60
OPTIONS = [("grpc.use_local_subchannel_pool", 1)]  # a new channel is a new connection


def exits(server: Server) -> int:
    try:
        return server.process.wait(EXIT_SECONDS)
    finally:
        server.stop()


def last_line(server: Server) -> str:
    return server.output().strip().splitlines()[-1]


async def answering_pids(target: str, connections: int) -> set[int]:
    seen = set()
    for _ in range(connections):
        async with grpc.aio.insecure_channel(target, options=OPTIONS) as channel:
            info = await info_pb2_grpc.InfoServiceStub(channel).GetInfo(info_pb2.GetInfoRequest(), timeout=10)
            seen.add(int(info.pid))
    return seen


async def grpc_health(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return int(answer.status)


def workers_of(server: Server) -> set[int]:
    pid = server.process.pid
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def stop(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(STOP_SECONDS)
    finally:
        server.stop()


@pytest.mark.req("SRS-165", "SDD-165")
def test_a_second_instance_on_ports_another_holds_exits_naming_the_address(tmp_path: Path) -> None:
    migrate(tmp_path / "first")
    first = start(SERVE, tmp_path / "first")
    http_port, grpc_port = first.http.rsplit(":", 1)[1], first.grpc.rsplit(":", 1)[1]
    try:
        first.wait_ready()
        clashes = {
            "both": {"ARCANA_HTTP_PORT": http_port, "ARCANA_GRPC_PORT": grpc_port},
            "grpc": {"ARCANA_HTTP_PORT": str(free_port()), "ARCANA_GRPC_PORT": grpc_port},
            "http": {"ARCANA_HTTP_PORT": http_port, "ARCANA_GRPC_PORT": str(free_port())},
            "grpc-role": {"ARCANA_ROLE": "grpc", "ARCANA_GRPC_PORT": grpc_port},
        }
        expected = {
            "both": f"arcana: cannot serve: HTTP address 127.0.0.1:{http_port} is in use by another process",
            "grpc": f"arcana: cannot serve: gRPC address 127.0.0.1:{grpc_port} is in use by another process",
            "http": f"arcana: cannot serve: HTTP address 127.0.0.1:{http_port} is in use by another process",
            "grpc-role": f"arcana: cannot serve: gRPC address 127.0.0.1:{grpc_port} is in use by another process",
        }
        for name, ports in clashes.items():
            migrate(tmp_path / name)
            second = start(SERVE, tmp_path / name, **ports)
            code = exits(second)
            assert code == 1, f"{name}: exit {code}\n{second.output()[-2000:]}"
            assert last_line(second) == expected[name], second.output()[-2000:]
            assert "Traceback" not in second.output()

        # The first instance alone answers every new connection, on both protocols.
        assert httpx.get(f"{first.http}/health/ready", timeout=5).status_code == 200
        assert asyncio.run(answering_pids(first.grpc, 12)) <= workers_of(first)
        assert stop(first) == 0, first.output()[-2000:]
    finally:
        first.stop()


@pytest.mark.req("SRS-165", "SDD-165")
def test_two_instances_started_at_once_on_the_same_ports_leave_exactly_one_serving(tmp_path: Path) -> None:
    ports = {"ARCANA_HTTP_PORT": str(free_port()), "ARCANA_GRPC_PORT": str(free_port())}
    for name in ("a", "b"):
        migrate(tmp_path / name)
    servers = [start(SERVE, tmp_path / name, **ports) for name in ("a", "b")]
    try:
        deadline = time.monotonic() + EXIT_SECONDS
        while all(server.process.poll() is None for server in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped = [server for server in servers if server.process.poll() is not None]
        assert len(stopped) == 1, [server.output()[-1500:] for server in servers]
        (loser,) = stopped
        (winner,) = [server for server in servers if server is not loser]
        assert loser.process.returncode == 1
        assert "is in use by another process" in last_line(loser), loser.output()[-2000:]
        winner.wait_ready()
        assert asyncio.run(answering_pids(winner.grpc, 8)) <= workers_of(winner)
        assert stop(winner) == 0, winner.output()[-2000:]
    finally:
        for server in servers:
            server.stop()


@pytest.mark.req("SRS-164", "SDD-164")
def test_serve_on_an_unmigrated_database_is_not_ready_names_schema_and_says_how_to_fix_it(tmp_path: Path) -> None:
    server = start(SERVE, tmp_path)
    try:
        deadline = time.monotonic() + EXIT_SECONDS
        while time.monotonic() < deadline:
            assert server.process.poll() is None, server.output()[-2000:]
            try:
                if httpx.get(f"{server.http}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        ready = httpx.get(f"{server.http}/health/ready", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["checks"]["schema"] == (
            "fail: the database is not migrated; run `python -m py_app migrate`"
        )
        assert asyncio.run(grpc_health(server.grpc)) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert "run `python -m py_app migrate`" in server.output()  # said at start, in the log, too

        assert command(tmp_path, "migrate").returncode == 0
        server.wait_ready()  # no restart needed
        deadline = time.monotonic() + 15
        while asyncio.run(grpc_health(server.grpc)) != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline, "gRPC health did not follow readiness"
            time.sleep(0.5)
        assert stop(server) == 0, server.output()[-2000:]
    finally:
        server.stop()
    assert "Traceback" not in server.output()
