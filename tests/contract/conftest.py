"""One live server per database backend for the whole contract suite, and every scenario run over both protocols.

The server is a real ``python -m py_app serve`` process on free ports under a temporary data directory, with
``ARCANA_REFRESH_REUSE_GRACE=0`` so refresh-token reuse is detected at once; it is migrated and has its first
admin. ``live_server`` is session-scoped and parametrised over SQLite (a file under the data directory),
MariaDB (a freshly created database, dropped at the end; with CI=true an unreachable MariaDB fails the tests)
and the layered topology (``python -m py_app up --mode layered``: a repository-tier process that alone opens
the SQLite file, a service-tier process calling it and an edge process calling that, over internal gRPC;
the suite talks to the edge) and the microservices topology (``up --mode microservices``: a users service and
an auth service, each on its own SQLite file, and an edge calling both; the admin is created through the users
service, whose propagation puts it in the auth service's replica).

A test decorated with ``@scenario`` takes ``client`` (and optionally ``admin``): it runs once over REST and
once over gRPC, inside one test, each run through a recording client, and then the two transcripts must be
equal (see transcript.py). Every run gets fresh clients (httpx and grpc.aio objects belong to the test's own
event loop) and unique usernames (the server is shared).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MARIADB_ADMIN_URL, free_port, mariadb_admin, unavailable
from tests.contract.clients import Client, GrpcClient, RestClient, Tokens, login
from tests.contract.transcript import LABELS, Entry, Recorder, RecordingClient, assert_same_transcripts, recording
from tests.support.smtp import Sink, start_sink

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60
STOP_SECONDS = 20
ADMIN_USERNAME = "root"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "contract-suite-admin-passphrase-quiet-otter-58"
PROTOCOLS = ("rest", "grpc")
BACKENDS = (
    "sqlite",
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    pytest.param("layered", marks=pytest.mark.req("SRS-192", "SRS-195")),
    pytest.param("microservices", marks=pytest.mark.req("SRS-220", "SRS-221")),
)
# What the server process runs, by backend: one `serve`, or a whole topology under `up` (which stops its
# processes when it gets SIGTERM).
COMMANDS = {
    "sqlite": ["serve"],
    "mariadb": ["serve"],
    "layered": ["up", "--mode", "layered"],
    "microservices": ["up", "--mode", "microservices"],
}
# Where a process of a topology is, in what `up` prints: "auth-1       pid 123     grpc 127.0.0.1:4567".
ADDRESS = re.compile(r"^(?P<name>[a-z]+-\d+) +pid \d+ +grpc (?P<grpc>\S+)", re.MULTILINE)
PER_PROTOCOL = ("client", "admin")  # the arguments a scenario gets afresh for each protocol


@dataclass(frozen=True)
class LiveServer:
    backend: str
    http: str
    grpc: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]
    mail: Sink  # the real SMTP server its relay delivers to

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
        ARCANA_RATE_LIMITS="off",  # hundreds of accounts from one address; limits have their own suite
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
        asyncio.run(mariadb_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:
        unavailable("MariaDB at 127.0.0.1:3306", exc)
        raise
    try:
        yield MARIADB_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture(scope="session", params=BACKENDS)
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``python -m py_app serve`` after ``migrate`` and ``create-admin``; stopped with SIGTERM at the end."""
    backend = str(request.param)
    with _database("sqlite" if backend in ("layered", "microservices") else backend) as database_url:
        yield from _serve(backend, database_url, tmp_path_factory.mktemp(f"contract-{backend}"))


def _serve(backend: str, database_url: str, base: Path) -> Iterator[LiveServer]:
    http_port, grpc_port = free_port(), free_port()
    mail = start_sink(base / "maildir")
    environ = _environment(base / "var", http_port, grpc_port, database_url) | {"ARCANA_SMTP_URL": mail.url}
    create_admin = ["create-admin", "--username", ADMIN_USERNAME, "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD]
    if backend != "microservices":  # that topology's `up` migrates its services' databases
        _run(["migrate"], environ)
        _run(create_admin, environ)
    log = base / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "py_app", *COMMANDS[backend]],
            cwd=ROOT,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(
        backend, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", base / "var", log, process, mail
    )
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
        names: tuple[str, ...] = ()
        if backend == "microservices":
            _run(create_admin, users_service_environment(server, environ))
            names = ("arcana_users.db", "arcana_auth.db")
        else:
            names = ("arcana.db",) if backend != "mariadb" else ()
        files = sorted(path.name for path in server.data_dir.glob("*.db"))
        assert files == sorted(names), f"the {backend} server and its database files {files} disagree"
        yield server
    finally:
        _stop(process)
        mail.stop()


def addresses(server: LiveServer) -> dict[str, str]:
    """Each process of a topology and its internal gRPC address, as `up` printed them."""
    return {match["name"]: match["grpc"] for match in ADDRESS.finditer(server.output())}


def users_service_environment(server: LiveServer, environ: Mapping[str, str]) -> dict[str, str]:
    """The settings of the microservices topology's users service (what `create-admin` runs with there)."""
    return {
        **environ,
        "ARCANA_MODE": "microservices",
        "ARCANA_ROLE": "users",
        "ARCANA_AUTH_TARGET": addresses(server)["auth-1"],
        "ARCANA_DATABASE_URL": f"sqlite+aiosqlite:///{server.data_dir / 'arcana_users.db'}",
    }


def make_client(protocol: str, server: LiveServer) -> Client:
    return RestClient(server.http) if protocol == "rest" else GrpcClient(server.grpc)


# --- one scenario, both protocols, one test --------------------------------------------------------------------

Scenario = Callable[..., Awaitable[None]]


async def run_over(protocol: str, made: Client, body: Scenario, arguments: Mapping[str, Any]) -> list[Entry]:
    """Run the scenario once through a recording ``made`` client; its specific assertions apply as written."""
    recorder = Recorder(protocol)
    client = RecordingClient(made, recorder)
    with recording(recorder):
        try:
            given: dict[str, Any] = {"client": client}
            if "admin" in inspect.signature(body).parameters:
                given["admin"] = await login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
            await body(**arguments, **given)
        except BaseException as error:
            error.add_note(f"(in the {LABELS[protocol]} run of the scenario, after {len(recorder.entries)} calls)")
            raise
        finally:
            await client.aclose()
    return recorder.entries


async def compare_protocols(
    body: Scenario, clients: Mapping[str, Callable[[], Client]], arguments: Mapping[str, Any]
) -> dict[str, list[Entry]]:
    """REST first, then gRPC, on the same server; then both transcripts must be equal."""
    transcripts = {protocol: await run_over(protocol, clients[protocol](), body, arguments) for protocol in PROTOCOLS}
    assert_same_transcripts(transcripts)
    return transcripts


def scenario(body: Scenario) -> Scenario:
    """Make ``body(client, [admin,] ...)`` one test that runs it over REST and over gRPC and compares the two.

    ``client`` is a recording client of one protocol, ``admin`` the first admin logged in over it; every
    other argument is an ordinary fixture or parameter, shared by both runs. Markers stay on the test.
    """
    signature = inspect.signature(body)
    assert "client" in signature.parameters, f"{body.__name__}: a scenario takes a `client`"
    shared = [parameter for name, parameter in signature.parameters.items() if name not in PER_PROTOCOL]
    needs_server = "live_server" in signature.parameters

    @functools.wraps(body)
    async def test(**arguments: Any) -> None:
        server: LiveServer = arguments["live_server"]
        passed = arguments if needs_server else {k: v for k, v in arguments.items() if k != "live_server"}
        makers = {protocol: functools.partial(make_client, protocol, server) for protocol in PROTOCOLS}
        await compare_protocols(body, makers, passed)

    server_parameter = inspect.Parameter("live_server", inspect.Parameter.KEYWORD_ONLY, annotation=LiveServer)
    test.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*shared, *([] if needs_server else [server_parameter])]
    )
    return test


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
async def rest_admin(rest: RestClient) -> Tokens:
    """The first admin, logged in over REST (for cross-protocol tests)."""
    return await login(rest, ADMIN_USERNAME, ADMIN_PASSWORD)
