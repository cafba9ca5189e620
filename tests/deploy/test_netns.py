"""The service on a host of its own: its own network namespace, reached over a veth link with a same-zone delay.

The server runs inside a namespace, listening only on that namespace's 127.0.0.1; the test process (the root
namespace, the client) reaches it through the link, whose far end delays every byte 0.25 ms each way (a relay:
this kernel has no netem, see tests/deploy/netns.py). The smoke subset of the contract suite runs through it
over REST and gRPC; the round trip with and without the delay is measured and written to var/netns.json,
the cost of one network hop that the deployment docs and the benchmarks quote.

Needs root (CI and the development machines have it); elsewhere it skips, saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.contract.clients import PASSWORD, Client, GrpcClient, RestClient, fails, ok, tokens
from tests.deploy import netns
from tests.e2e.support import ROOT, migrate

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
DELAY = 0.00025  # seconds each way: a same-zone hop
REPORT = ROOT / "var" / "netns.json"
READY_SECONDS = 120


def _server_env(tmp_path: Path, http_port: int, grpc_port: int, **extra: str) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("ARCANA_", "MAKE"))}
    environ.update(
        ARCANA_DATA_DIR=str(tmp_path / "var"),
        ARCANA_HTTP_HOST="127.0.0.1",
        ARCANA_HTTP_PORT=str(http_port),
        ARCANA_GRPC_HOST="127.0.0.1",
        ARCANA_GRPC_PORT=str(grpc_port),
        ARCANA_SHUTDOWN_GRACE="2",
        ARCANA_LOG_FORMAT="json",
        # Every smoke call comes from one address (the link's near end); limits have their own tests.
        ARCANA_RATE_LIMITS="off",
        **extra,
    )
    return environ


def _wait_ready(url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server in its namespace not ready within {READY_SECONDS} s:\n{log.read_text()[-3000:]}")


async def smoke(client: Client) -> None:
    """The contract suite's smoke path: register, me, login, refresh, logout, and the ended session refused."""
    name = f"ns{uuid.uuid4().hex[:10]}"
    try:
        opened = tokens(await client.register(name, f"{name}@example.com", PASSWORD))
        assert ok(await client.me(opened.access))["username"] == name
        session = tokens(await client.login(name, PASSWORD))
        rotated = tokens(await client.refresh(session.refresh))
        assert ok(await client.me(rotated.access))["id"] == opened.user["id"]
        ok(await client.logout(rotated.access))
        fails(await client.me(rotated.access), "unauthenticated")
    finally:
        await client.aclose()


def _round_trips(url: str, count: int = 200, path: str = "/health/live", token: str = "") -> dict[str, float]:
    """The fastest and the median GET ``path`` over one keep-alive connection, in ms. The fastest is what
    the path costs (a busy machine only adds to a round trip), the median what a caller saw."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=10, headers=headers) as http:
        http.get(path)
        times = []
        for _ in range(count):
            began = time.perf_counter()
            assert http.get(path).status_code == 200
            times.append(time.perf_counter() - began)
    return {"min": round(1000 * min(times), 3), "median": round(1000 * statistics.median(times), 3)}


def _me_round_trips(url: str) -> dict[str, float]:
    """GET /api/v1/auth/me with a fresh account's bearer: an authenticated point query through every tier."""
    name = f"nsme{uuid.uuid4().hex[:10]}"
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    made = httpx.post(f"{url}/api/v1/auth/register", json=body, timeout=30)
    assert made.status_code == 201, made.text
    return _round_trips(url, 100, "/api/v1/auth/me", made.json()["access_token"])


def _record(key: str, figures: dict[str, object]) -> None:
    """Merge ``figures`` under ``key`` into var/netns.json (each test writes its own part)."""
    recorded = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    recorded[key] = figures
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(recorded, indent=2) + "\n")


@pytest.mark.req("SRS-208")
def test_a_server_in_its_own_namespace_serves_the_smoke_path_across_a_delayed_link(tmp_path: Path) -> None:
    if reason := netns.unavailable():
        pytest.skip(reason)
    migrate(tmp_path)
    http_port, grpc_port, undelayed = free_port(), free_port(), free_port()
    with netns.namespaces(DELAY) as spaces:
        edge = spaces.namespace("edge")
        link = spaces.link(netns.ROOT_NS, edge)
        log = tmp_path / "server.log"
        spaces.spawn(edge, [sys.executable, "-m", "py_app", "serve"], log, _server_env(tmp_path, http_port, grpc_port))
        spaces.expose(link, http_port, tmp_path / "relay-http.log")
        spaces.expose(link, grpc_port, tmp_path / "relay-grpc.log")
        spaces.expose(link, http_port, tmp_path / "relay-undelayed.log", delay=0, listen_port=undelayed)
        rest_url = f"http://{link.far_address}:{http_port}"
        _wait_ready(rest_url, log)

        asyncio.run(smoke(RestClient(rest_url)))
        asyncio.run(smoke(GrpcClient(f"{link.far_address}:{grpc_port}")))
        # The server listens only inside its namespace: the client's own loopback has nothing there.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{http_port}/health/live", timeout=2)

        delayed_ms = _round_trips(rest_url)
        direct_ms = _round_trips(f"http://{link.far_address}:{undelayed}")
        me_ms = _me_round_trips(rest_url)
        output = log.read_text(errors="replace")
    assert "Traceback" not in output, output[-3000:]
    # Recorded, not asserted: on a shared machine (and under coverage, which the relays run under too) the
    # difference of two fastest round trips is noise of the same size as the 0.5 ms the link adds; a CI run
    # read it negative once. Speed is the benchmarks' business; this test proves the topology works.
    added = delayed_ms["min"] - direct_ms["min"]
    _record(
        "monolithic",
        {
            "delay_ms_each_way": DELAY * 1000,
            "health_round_trip_ms": {"across_the_delayed_link": delayed_ms, "same_link_no_delay": direct_ms},
            "added_per_round_trip_ms": round(added, 3),
            "me_round_trip_ms": me_ms,
        },
    )


def _reaches(namespace: str, address: str, port: int) -> bool:
    """Whether a process in ``namespace`` can open a TCP connection to ``address:port``."""
    probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=2).close()"
    inside = ["ip", "netns", "exec", namespace] if namespace else []
    done = subprocess.run([*inside, sys.executable, "-c", probe], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


ELSEWHERE = "198.51.100.1"  # TEST-NET-2: an address no link of the test holds


def _route_device(namespace: str, address: str) -> str:
    """The device ``namespace`` sends packets for ``address`` through ("" when it has no route)."""
    inside = ["-n", namespace] if namespace else []
    done = subprocess.run(["ip", *inside, "route", "get", address], capture_output=True, text=True, check=False)
    words = done.stdout.split()
    return words[words.index("dev") + 1] if done.returncode == 0 and "dev" in words else ""


@pytest.mark.req("SRS-209")
def test_the_layered_tiers_on_hosts_of_their_own_serve_the_smoke_path_and_each_reaches_only_its_neighbour(
    tmp_path: Path,
) -> None:
    if reason := netns.unavailable():
        pytest.skip(reason)
    migrate(tmp_path)
    repository_port, service_port, http_port, grpc_port = free_port(), free_port(), free_port(), free_port()
    with netns.namespaces(DELAY) as spaces:
        edge, service, repository = spaces.namespace("edge"), spaces.namespace("svc"), spaces.namespace("repo")
        client_edge = spaces.link(netns.ROOT_NS, edge)
        edge_service = spaces.link(edge, service)
        service_repository = spaces.link(service, repository)
        logs = {name: tmp_path / f"{name}.log" for name in ("repository", "service", "edge")}
        layered = {"ARCANA_MODE": "layered"}
        spaces.spawn(
            repository,
            [sys.executable, "-m", "py_app", "serve"],
            logs["repository"],
            _server_env(tmp_path, free_port(), repository_port, ARCANA_ROLE="repository", **layered),
        )
        spaces.expose(service_repository, repository_port, tmp_path / "relay-repository.log")
        spaces.spawn(
            service,
            [sys.executable, "-m", "py_app", "serve"],
            logs["service"],
            _server_env(
                tmp_path,
                free_port(),
                service_port,
                ARCANA_ROLE="service",
                ARCANA_REPOSITORY_TARGET=f"{service_repository.far_address}:{repository_port}",
                **layered,
            ),
        )
        spaces.expose(edge_service, service_port, tmp_path / "relay-service.log")
        spaces.spawn(
            edge,
            [sys.executable, "-m", "py_app", "serve"],
            logs["edge"],
            _server_env(
                tmp_path,
                http_port,
                grpc_port,
                ARCANA_SERVICE_TARGET=f"{edge_service.far_address}:{service_port}",
                **layered,
            ),
        )
        spaces.expose(client_edge, http_port, tmp_path / "relay-http.log")
        spaces.expose(client_edge, grpc_port, tmp_path / "relay-grpc.log")
        rest_url = f"http://{client_edge.far_address}:{http_port}"
        _wait_ready(rest_url, logs["edge"])

        asyncio.run(smoke(RestClient(rest_url)))
        asyncio.run(smoke(GrpcClient(f"{client_edge.far_address}:{grpc_port}")))
        me_ms = _me_round_trips(rest_url)
        # Each tier reaches its neighbour and nothing further: the edge has no route to the repository tier.
        assert _reaches(edge, edge_service.far_address, service_port)
        assert not _reaches(edge, service_repository.far_address, repository_port)
        # The client sees the edge only: the root namespace's route to the service tier is not through its
        # link to the edge (it is the default route out of the machine). A connection attempt would prove
        # nothing here: this sandbox's network answers connections to any address on some ports.
        to_edge = _route_device(netns.ROOT_NS, client_edge.far_address)  # the client's link
        to_service = _route_device(netns.ROOT_NS, edge_service.far_address)
        assert to_edge != ""
        assert to_service != to_edge
        assert to_service == _route_device(netns.ROOT_NS, ELSEWHERE)  # wherever any other address goes
        outputs = {name: log.read_text(errors="replace") for name, log in logs.items()}
    for name, output in outputs.items():
        assert "Traceback" not in output, (name, output[-3000:])
    recorded = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    _record(
        "layered",
        {
            "delay_ms_each_way": DELAY * 1000,
            "hops": ["client -> edge", "edge -> service", "service -> repository"],
            "me_round_trip_ms": me_ms,
            "monolithic_me_round_trip_ms": recorded.get("monolithic", {}).get("me_round_trip_ms"),
        },
    )
