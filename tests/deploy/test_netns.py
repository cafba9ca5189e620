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


def _server_env(tmp_path: Path, http_port: int, grpc_port: int) -> dict[str, str]:
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


def _round_trips(url: str, count: int = 200) -> dict[str, float]:
    """The fastest and the median GET /health/live over one keep-alive connection, in ms. The fastest is
    what the path costs (a busy machine only adds to a round trip), the median what a caller saw."""
    with httpx.Client(base_url=url, timeout=5) as http:
        http.get("/health/live")
        times = []
        for _ in range(count):
            began = time.perf_counter()
            assert http.get("/health/live").status_code == 200
            times.append(time.perf_counter() - began)
    return {"min": 1000 * min(times), "median": 1000 * statistics.median(times)}


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
        output = log.read_text(errors="replace")
    assert "Traceback" not in output, output[-3000:]
    added = delayed_ms["min"] - direct_ms["min"]
    # The delay is on the path: a round trip crosses the link twice, 2 x 0.25 ms (sleeps never end early; the
    # two fastest round trips differ by the delay, less what the shared machine blurs).
    assert added >= 2 * DELAY * 1000 * 0.8, (delayed_ms, direct_ms)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        json.dumps(
            {
                "delay_ms_each_way": DELAY * 1000,
                "health_round_trip_ms": {"across_the_delayed_link": delayed_ms, "same_link_no_delay": direct_ms},
                "added_per_round_trip_ms": round(added, 3),
            },
            indent=2,
        )
        + "\n"
    )
