"""A drain that had to be forced is not a clean exit: in-flight work still running when the shutdown grace ran
out makes the process exit 1 and log `drain forced`, for Granian's workers and for the gRPC runner.

The work is held in flight by a private mariadbd frozen with SIGSTOP (and a database timeout far beyond the
grace), which is what a hung database does to a request. A clean drain still exits 0 (tests/e2e/test_make_run.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from tests.e2e.support import Server, migrate, start
from tests.faults.private import PrivateMariaDB, private_mariadb
from tests.support.logs import at_levels

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.timeout(180), pytest.mark.req("SRS-166")]
GRACE = 1.0
KILL_AFTER = GRACE + 5  # Granian kills a worker still busy this long after SIGTERM
EXIT_BOUND = KILL_AFTER + 10  # with room for a loaded machine
PASSWORD = "correct horse battery"
SERVE = [sys.executable, "-m", "py_app", "serve"]


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMariaDB]:
    with private_mariadb(tmp_path_factory.mktemp("drain") / "mariadb") as server:
        yield server


@pytest.fixture
def database(mariadb: PrivateMariaDB, tmp_path: Path) -> dict[str, str]:
    """A migrated database of the test's own, on the private server; settings that let a request hang."""
    settings = {
        "ARCANA_DATABASE_URL": mariadb.create_database(f"drain_{uuid.uuid4().hex[:8]}"),
        "ARCANA_DB_TIMEOUT": "60",  # a request on the frozen database outlives the grace
        "ARCANA_SHUTDOWN_GRACE": str(GRACE),
        "ARCANA_JOBS": "off",  # no background query: the one queued at the frozen server is the request's
    }
    migrate(tmp_path, **settings)
    return settings


@contextlib.contextmanager
def frozen(mariadb: PrivateMariaDB) -> Iterator[None]:
    mariadb.freeze()
    try:
        yield
    finally:
        mariadb.thaw()


def grpc_ready(server: Server) -> None:
    async def check() -> None:
        async with grpc.aio.insecure_channel(server.grpc) as channel:
            await channel.channel_ready()

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.output()[-2000:]
        try:
            asyncio.run(asyncio.wait_for(check(), 2))
            return
        except TimeoutError:
            continue
    pytest.fail("gRPC not serving")


def register_in_background(server: Server, protocol: str) -> threading.Thread:
    """A registration that will hang on the frozen database; its outcome does not matter."""
    name = f"hang{uuid.uuid4().hex[:8]}"

    def over_http() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(
                f"{server.http}/api/v1/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
                timeout=60,
            )

    def over_grpc() -> None:
        async def call() -> None:
            async with grpc.aio.insecure_channel(server.grpc) as channel:
                request = auth_pb2.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD)
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await auth_pb2_grpc.AuthServiceStub(channel).Register(request, timeout=60)

        asyncio.run(call())

    thread = threading.Thread(target=over_http if protocol == "http" else over_grpc, daemon=True)
    thread.start()
    return thread


def waiting_on(port: int) -> bool:
    """Whether a query sits unread at the frozen server: a connection to ``port`` with bytes in its receive
    queue (the kernel still takes what the service sends; the stopped mariadbd reads none of it)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port and int(queues.split(":")[1], 16) > 0:
                return True
    return False


def stop_with_work_in_flight(server: Server, mariadb: PrivateMariaDB, protocol: str) -> tuple[int, float]:
    with frozen(mariadb):
        register_in_background(server, protocol)
        # Sent and now waiting on the database: wait until a query of it is seen queued at the frozen server
        # (on a loaded machine the client's channel set-up and the hash take seconds, and a call that has not
        # reached the database yet would drain cleanly).
        deadline = time.monotonic() + 30
        while not waiting_on(mariadb.port):
            assert time.monotonic() < deadline, "the request never reached the frozen database"
            time.sleep(0.1)
        time.sleep(0.2)
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            code = server.process.wait(EXIT_BOUND)
        finally:
            server.stop()
        return code, time.monotonic() - began


def assert_forced(server: Server, code: int, seconds: float, bound: float, *words: str) -> None:
    output = server.output()
    print(f"exit {code} after {seconds:.2f}s")  # the measured drain, for the report (pytest -s)
    assert code == 1, output[-3000:]
    assert seconds <= bound, output[-3000:]
    (entry,) = [entry for entry in at_levels(output, "error") if entry["msg"] == "drain forced"][-1:]
    line = json.dumps(entry)
    for word in words:
        assert word in line, line
    assert "Traceback" not in output, output[-3000:]


def test_a_grpc_call_still_running_after_the_grace_makes_the_edge_exit_1(
    tmp_path: Path, mariadb: PrivateMariaDB, database: dict[str, str]
) -> None:
    server = start(SERVE, tmp_path, **database)
    server.wait_ready()
    code, seconds = stop_with_work_in_flight(server, mariadb, "grpc")
    assert_forced(server, code, seconds, GRACE + 8, "1 gRPC call")


def test_an_http_request_still_running_when_granian_kills_the_worker_makes_the_edge_exit_1(
    tmp_path: Path, mariadb: PrivateMariaDB, database: dict[str, str]
) -> None:
    server = start(SERVE, tmp_path, **database)
    server.wait_ready()
    code, seconds = stop_with_work_in_flight(server, mariadb, "http")
    assert_forced(server, code, seconds, EXIT_BOUND, "killed")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_grpc_call_still_running_after_the_grace_makes_the_grpc_runner_exit_1(
    tmp_path: Path, mariadb: PrivateMariaDB, database: dict[str, str], workers: str
) -> None:
    server = start(SERVE, tmp_path, ARCANA_ROLE="grpc", ARCANA_WORKERS=workers, **database)
    grpc_ready(server)
    time.sleep(1 if workers == "1" else 3)  # every worker up, whichever takes the call
    code, seconds = stop_with_work_in_flight(server, mariadb, "grpc")
    assert_forced(server, code, seconds, GRACE + 8, "gRPC call")
