"""One live server per database backend for the whole contract suite (migrated, first admin), and a client per protocol.

The server is a real ``python -m py_app serve`` process on free ports under a temporary data directory, with
``ARCANA_REFRESH_REUSE_GRACE=0`` so refresh-token reuse is detected at once. ``live_server`` is session-scoped
and parametrised over SQLite (a file under the data directory) and MariaDB (a freshly created database, dropped
at the end; with CI=true an unreachable MariaDB fails the tests). Every test gets fresh clients (httpx and
grpc.aio objects belong to the test's own event loop) and unique usernames (the server is shared).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import MARIADB_ADMIN_URL, _mariadb_admin, free_port, unavailable
from tests.contract.clients import Client, GrpcClient, RestClient, Tokens, login

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60
STOP_SECONDS = 20
ADMIN_USERNAME = "root"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "contract-suite-admin-passphrase-quiet-otter-58"
PROTOCOLS = ("rest", "grpc")
BACKENDS = ("sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb))


@dataclass(frozen=True)
class LiveServer:
    backend: str
    http: str
    grpc: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def jwt_secret(self) -> str:
        """The development signing key the server generated under its data directory."""
        return (self.data_dir / "jwt_secret").read_text().strip()


def _environment(data_dir: Path, http_port: int, grpc_port: int, database_url: str) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ARCANA_")}
    if database_url:  # else SQLite under the data directory
        environ["ARCANA_DATABASE_URL"] = database_url
    environ.update(
        ARCANA_DATA_DIR=str(data_dir),
        ARCANA_HTTP_PORT=str(http_port),
        ARCANA_GRPC_PORT=str(grpc_port),
        ARCANA_REFRESH_REUSE_GRACE="0",
        ARCANA_SHUTDOWN_GRACE="2",
    )
    return environ


def _run(command: list[str], environ: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "py_app", *command], cwd=ROOT, env=environ, capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        pytest.fail(f"`py_app {command[0]}` exited {done.returncode}:\n{done.stdout!r}\n{done.stderr!r}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@contextmanager
def _database(backend: str) -> Iterator[str]:
    """The live server's ``ARCANA_DATABASE_URL``: "" (SQLite under its data directory) or a fresh MariaDB database."""
    if backend == "sqlite":
        yield ""
        return
    name = f"arcana_contract_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_mariadb_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:
        unavailable("MariaDB at 127.0.0.1:3306", exc)
        raise
    try:
        yield MARIADB_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture(scope="session", params=BACKENDS)
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``python -m py_app serve`` after ``migrate`` and ``create-admin``; stopped with SIGTERM at the end."""
    backend = str(request.param)
    with _database(backend) as database_url:
        yield from _serve(backend, database_url, tmp_path_factory.mktemp(f"contract-{backend}"))


def _serve(backend: str, database_url: str, base: Path) -> Iterator[LiveServer]:
    http_port, grpc_port = free_port(), free_port()
    environ = _environment(base / "var", http_port, grpc_port, database_url)
    _run(["migrate"], environ)
    _run(["create-admin", "--username", ADMIN_USERNAME, "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD], environ)
    log = base / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "py_app", "serve"],
            cwd=ROOT,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(backend, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", base / "var", log, process)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode} before ready:\n{server.output()[-3000:]}")
            try:
                if httpx.get(f"{server.http}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready within {STARTUP_SECONDS}s:\n{server.output()[-3000:]}")
            time.sleep(0.1)
        sqlite_file = server.data_dir / "arcana.db"
        assert sqlite_file.exists() == (backend == "sqlite"), f"the {backend} server and {sqlite_file} disagree"
        yield server
    finally:
        _stop(process)


def make_client(protocol: str, server: LiveServer) -> Client:
    return RestClient(server.http) if protocol == "rest" else GrpcClient(server.grpc)


@pytest.fixture(params=PROTOCOLS)
async def client(request: pytest.FixtureRequest, live_server: LiveServer) -> AsyncIterator[Client]:
    """The scenario's protocol: every test using it runs once over REST and once over gRPC."""
    made = make_client(request.param, live_server)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def rest(live_server: LiveServer) -> AsyncIterator[RestClient]:
    made = RestClient(live_server.http)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def grpc_client(live_server: LiveServer) -> AsyncIterator[GrpcClient]:
    made = GrpcClient(live_server.grpc)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def admin(client: Client) -> Tokens:
    """The first admin, logged in over the scenario's protocol."""
    return await login(client, ADMIN_USERNAME, ADMIN_PASSWORD)


@pytest.fixture
async def rest_admin(rest: RestClient) -> Tokens:
    """The first admin, logged in over REST (for cross-protocol tests)."""
    return await login(rest, ADMIN_USERNAME, ADMIN_PASSWORD)
