"""The layered mode as real processes: the settings that choose it, `python -m py_app up`, and a tier that is down.

(The whole contract suite against the layered topology's edge is in tests/contract, backend ``layered``.)
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path

import grpc
import httpx
import msgspec
import pytest

from py_app._proto.arcana.internal.v1 import ports_pb2, ports_pb2_grpc
from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from py_app.auth.models import ClientInfo
from py_app.auth.ports import AuthUseCases
from py_app.infra import remote
from py_app.infra.service_auth import HEADER, ServiceCredential
from tests.conftest import free_port
from tests.e2e.support import STOP_SECONDS, Server, command, migrate, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
PASSWORD = "violet-harbour-lantern-42"
READY_SECONDS = 90
LISTED = re.compile(r"^(?P<name>[a-z]+-\d+)\s+pid (?P<pid>\d+)\s+grpc (?P<grpc>\S+)(?:\s+http (?P<http>\S+))?$", re.M)


@pytest.mark.req("SRS-190")
@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"ARCANA_MODE": "layered", "ARCANA_ROLE": "grpc"}, "ARCANA_ROLE=grpc is not a role of ARCANA_MODE=layered"),
        ({"ARCANA_ROLE": "repository"}, "ARCANA_ROLE=repository is not a role of ARCANA_MODE=monolithic"),
        ({"ARCANA_MODE": "layered"}, "ARCANA_SERVICE_TARGET is required for ARCANA_ROLE=edge in layered mode"),
        (
            {"ARCANA_MODE": "layered", "ARCANA_ROLE": "service"},
            "ARCANA_REPOSITORY_TARGET is required for ARCANA_ROLE=service in layered mode",
        ),
        ({"ARCANA_MODE": "microservices"}, "ARCANA_AUTH_TARGET is required for ARCANA_ROLE=edge in microservices mode"),
        (
            {"ARCANA_MODE": "microservices", "ARCANA_ROLE": "users"},
            "ARCANA_AUTH_TARGET is required for ARCANA_ROLE=users in microservices mode",
        ),
        ({"ARCANA_MODE": "tiered"}, "ARCANA_MODE"),
        (
            {"ARCANA_MODE": "layered", "ARCANA_SERVICE_TARGET": "service-a:50061,service-b:50061"},
            "ARCANA_SERVICE_TARGET: 'service-a:50061': a list takes IP addresses; for a name use dns:///",
        ),
    ],
)
def test_a_wrong_mode_or_role_is_refused_at_start_with_one_line(
    tmp_path: Path, environment: dict[str, str], message: str
) -> None:
    result = command(tmp_path, "serve", **environment)
    assert result.returncode == 2, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def _register(http: str) -> str:
    name = f"lay{uuid.uuid4().hex[:10]}"
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    answer = httpx.post(f"{http}/api/v1/auth/register", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["access_token"])


def _me(http: str, token: str) -> httpx.Response:
    return httpx.get(f"{http}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _listed(server: Server, mode: str = "layered") -> dict[str, dict[str, str]]:
    deadline = time.monotonic() + READY_SECONDS
    while f"ready: {mode}" not in server.output():
        if server.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"`up` not ready (exit {server.process.poll()}):\n{server.output()[-3000:]}")
        time.sleep(0.2)
    return {match["name"]: match.groupdict() for match in LISTED.finditer(server.output())}


def _descendants(pid: int) -> set[int]:
    found = {pid}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found |= _descendants(int(child))
    return found


def _open_files(pid: int) -> set[str]:
    names = set()
    for link in Path(f"/proc/{pid}/fd").iterdir():
        try:
            names.add(os.readlink(link))
        except OSError:
            continue
    return names


def _internal_call(target: str, tier: str, login: str, token: str | None) -> bytes | grpc.StatusCode:
    """A raw ``Call`` of AuthUseCases.login on an internal tier's own RPC, as a caller from outside would make it."""
    arguments = remote.port_methods(AuthUseCases)["login"].encode_arguments((login, PASSWORD, ClientInfo()), {})
    request = ports_pb2.CallRequest(port="AuthUseCases", method="login", arguments=arguments)
    with grpc.insecure_channel(target) as channel:
        stub = ports_pb2_grpc.RepositoryStub(channel) if tier == "Repository" else ports_pb2_grpc.ServicesStub(channel)
        try:
            reply = stub.Call(request, metadata=((HEADER, token),) if token is not None else (), timeout=30)
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return code
    return bytes(reply.result)


def _closed_to_the_world(processes: dict[str, dict[str, str]], data_dir: Path, login: str) -> None:
    """Internal ports refuse a caller without a valid service token; with the edge's, the answer has no hash."""
    forged = ServiceCredential(b"f" * 32, "edge").token()
    for name, tier in (("repository-1", "Repository"), ("service-1", "Services")):
        for token in (None, forged):
            assert _internal_call(processes[name]["grpc"], tier, login, token) == grpc.StatusCode.UNAUTHENTICATED
    edge = ServiceCredential((data_dir / "internal_secret").read_bytes().strip(), "edge").token()
    answer = _internal_call(processes["service-1"]["grpc"], "Services", login, edge)
    assert isinstance(answer, bytes), answer
    assert b"argon2" not in answer
    assert msgspec.json.decode(answer)["user"]["password_hash"] == ""


@pytest.mark.req("SRS-191", "SRS-193", "SRS-195", "SRS-197", "SRS-198")
def test_up_starts_the_layered_topology_whose_edges_share_one_service_tier_and_stops_it_cleanly(tmp_path: Path) -> None:
    migrate(tmp_path)
    up = start([sys.executable, "-m", "py_app", "up", "--mode", "layered", "--replicas", "edge=2"], tmp_path)
    try:
        processes = _listed(up)
        assert sorted(processes) == ["edge-1", "edge-2", "repository-1", "service-1"], processes
        first, second = processes["edge-1"]["http"], processes["edge-2"]["http"]
        assert len({first, second, *(p["grpc"] for p in processes.values())}) == 6  # all ports distinct
        token = _register(first)
        assert _me(second, token).status_code == 200  # one repository behind both edges
        _closed_to_the_world(processes, tmp_path / "var", _me(second, token).json()["username"])
        assert (
            httpx.post(f"{first}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204
        )
        assert _me(second, token).status_code == 401  # logged out through one edge: refused by the other at once
        database = str(tmp_path / "var" / "arcana.db")
        holders = {
            name: any(path.startswith(database) for pid in _descendants(int(p["pid"])) for path in _open_files(pid))
            for name, p in processes.items()
        }
        assert holders == {"repository-1": True, "service-1": False, "edge-1": False, "edge-2": False}
        stops_cleanly(up, processes)
    finally:
        up.stop()
    assert "Traceback" not in up.output()


@pytest.mark.req("SRS-193")
def test_up_runs_the_monolithic_mode_with_two_edges_on_distinct_ports_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    migrate(tmp_path)
    up = start([sys.executable, "-m", "py_app", "up", "--replicas", "edge=2"], tmp_path)
    try:
        processes = _listed(up, "monolithic")
        assert sorted(processes) == ["edge-1", "edge-2"], processes
        assert processes["edge-1"]["http"] != processes["edge-2"]["http"]
        token = _register(processes["edge-1"]["http"])
        assert _me(processes["edge-2"]["http"], token).status_code == 200
        up.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert up.process.wait(STOP_SECONDS * 2) == 0, up.output()[-3000:]
        assert not [p for p in processes.values() if Path(f"/proc/{p['pid']}").exists()]
    finally:
        up.stop()
    assert "Traceback" not in up.output()


@pytest.mark.req("SRS-193")
def test_up_refuses_replicas_it_cannot_run_with_one_line(tmp_path: Path) -> None:
    result = command(tmp_path, "up", "--mode", "layered", "--replicas", "repository=2")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "arcana up: --replicas: repository runs as one process on SQLite (several need ARCANA_DATABASE_URL=mysql://...)"
    )


@pytest.mark.mariadb
@pytest.mark.req("SRS-215", "SRS-213")
def test_up_runs_two_service_and_two_repository_processes_and_the_edge_serves_on_when_one_of_each_dies(
    tmp_path: Path, mariadb_url: str
) -> None:
    migrate(tmp_path, ARCANA_DATABASE_URL=mariadb_url)
    up = start(
        [sys.executable, "-m", "py_app", "up", "--mode", "layered", "--replicas", "service=2,repository=2"],
        tmp_path,
        ARCANA_DATABASE_URL=mariadb_url,
    )
    try:
        processes = _listed(up)
        assert sorted(processes) == ["edge-1", "repository-1", "repository-2", "service-1", "service-2"], processes
        edge = processes["edge-1"]
        http = edge["http"]
        token = _register(http)
        for victim in ("service-1", "repository-2"):  # one of each tier; its twin answers from the next call
            pid = int(processes[victim]["pid"])
            os.killpg(pid, signal.SIGKILL)
            _until(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _zombie(pid), up)
            assert _me(http, token).status_code == 200  # a read through both tiers
            assert _grpc_me(edge["grpc"], token) == grpc.StatusCode.OK
            token = _register(http)  # a write: one try, answered by the process that is left
            assert httpx.get(f"{http}/health/ready", timeout=10).status_code == 200
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(STOP_SECONDS * 2) == 1, up.output()[-3000:]  # replicas died: not a clean run
    finally:
        up.stop()
    output = up.output()
    assert "arcana up: service-1 exited with -9; service-2 go on" in output
    assert "arcana up: repository-2 exited with -9; repository-1 go on" in output
    assert "edge-1       stopped (0)" in output
    assert "Traceback" not in output


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _grpc_me(target: str, token: str) -> grpc.StatusCode:
    with grpc.insecure_channel(target) as channel:
        try:
            auth_pb2_grpc.AuthServiceStub(channel).Me(
                auth_pb2.MeRequest(), metadata=[("authorization", f"Bearer {token}")], timeout=30
            )
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def _tier(tmp_path: Path, role: str, port: int, **env: str) -> Server:
    return start(
        [sys.executable, "-m", "py_app", "serve"],
        tmp_path / role,
        ARCANA_DATA_DIR=str(tmp_path / "var"),
        ARCANA_MODE="layered",
        ARCANA_ROLE=role,
        ARCANA_GRPC_PORT=str(port),
        **env,
    )


def _until(check: object, server: Server) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, server.output()[-3000:]
        time.sleep(0.3)


def _down(edge: Server, token: str) -> None:
    """What the edge answers while a tier behind it is down: 503 + Retry-After, UNAVAILABLE, not ready."""
    down = _me(edge.http, token)
    assert down.status_code == 503, down.text
    assert down.headers["Retry-After"] == "1"
    assert down.json()["code"] == "unavailable"
    assert "127.0.0.1" not in down.text  # the internal address stays inside
    assert _grpc_me(edge.grpc, token) == grpc.StatusCode.UNAVAILABLE
    _until(lambda: httpx.get(f"{edge.http}/health/ready", timeout=10).status_code == 503, edge)


@pytest.mark.req("SRS-194")
def test_a_tier_that_is_down_is_a_503_with_retry_after_and_unavailable_at_the_edge_until_it_is_back(
    tmp_path: Path,
) -> None:
    migrate(tmp_path)
    repository_port, service_port = free_port(), free_port()
    started = [_tier(tmp_path, "repository", repository_port)]
    started.append(_tier(tmp_path, "service", service_port, ARCANA_REPOSITORY_TARGET=f"127.0.0.1:{repository_port}"))
    edge = start(
        [sys.executable, "-m", "py_app", "serve"],
        tmp_path / "edge",
        ARCANA_DATA_DIR=str(tmp_path / "var"),
        ARCANA_MODE="layered",
        ARCANA_SERVICE_TARGET=f"127.0.0.1:{service_port}",
    )
    try:
        edge.wait_ready()
        token = _register(edge.http)
        assert _me(edge.http, token).status_code == 200
        for role, port, index in (("repository", repository_port, 0), ("service", service_port, 1)):
            os.killpg(started[index].process.pid, signal.SIGKILL)  # two hops away, then the next tier
            started[index].process.wait(10)
            _down(edge, token)
            env = {} if role == "repository" else {"ARCANA_REPOSITORY_TARGET": f"127.0.0.1:{repository_port}"}
            started.append(_tier(tmp_path, role, port, **env))
            _until(lambda: _me(edge.http, token).status_code == 200, edge)  # reconnects by itself
            assert _grpc_me(edge.grpc, token) == grpc.StatusCode.OK
    finally:
        edge.stop()
        for server in started:
            server.stop()
    assert "Traceback" not in edge.output()


def stops_cleanly(up: Server, processes: dict[str, dict[str, str]]) -> None:
    """SIGTERM to ``up`` (Ctrl-C's signal in a terminal) stops every process it started, each reported stopped (0)."""
    pids = {int(p["pid"]) for p in processes.values()}
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(STOP_SECONDS * 2) == 0, up.output()[-3000:]
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    for name in processes:
        assert f"{name:<12} stopped (0)" in up.output()
