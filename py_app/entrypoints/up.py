"""``python -m py_app up``: a whole topology on this machine, as processes, for development and tests.

Each process is ``python -m py_app serve`` with its ``ARCANA_MODE``, ``ARCANA_ROLE`` and ports in its
environment (everything else is inherited). The internal tiers start first; each process and its
addresses are printed; ``up`` waits until every process is ready (REST ``/health/ready`` at the edge,
gRPC health SERVING for an internal tier), prints ``ready``, then waits. SIGINT or SIGTERM stops the
edges first, then the tiers behind them (so in-flight requests drain while their tiers still answer);
exit 0 when every process stopped cleanly, 1 when one failed or exited early.

``--replicas service=2`` (``repository=2`` on a network database) starts several processes of a tier and
gives its callers their list, which they balance over (``infra.targets``); a replica that exits while
others of its role run is reported and the topology goes on with those.

``--mode microservices`` starts the users service, the auth service and the edges. Each service has a
database of its own, named after ARCANA_DATABASE_URL's (``service_database``: ``arcana_users.db`` and
``arcana_auth.db`` beside a SQLite file; ``<name>_users`` and ``<name>_auth`` on the same server for a
network URL, created when missing); ``up`` migrates both before it starts them. The edge gets none.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from py_app.config import TARGETS as NEEDS
from py_app.config import Settings

READY_SECONDS = 60.0
STOP_MARGIN = 10.0  # beyond the shutdown grace, before a process that does not stop is killed
HOST = "127.0.0.1"
# What each mode starts, in start order (an edge needs the tier behind it).
TOPOLOGIES: dict[str, tuple[str, ...]] = {
    "monolithic": ("edge",),
    "layered": ("repository", "service", "edge"),
    "microservices": ("users", "auth", "edge"),
}
# Every role may run several processes. Service processes hold nothing between calls (no session cache
# without Redis; counters, outbox claims and sessions live behind the repository tier): their callers balance
# over the list. Repository processes hold nothing either, but on a SQLite file they would only queue for its
# one writer lock: several of them are for a network database (docs/SPEC.md SDD-215).
# The users and auth services likewise: several of them are for a network database (SDD-226).
NETWORK_REPLICABLE = frozenset({"repository", "users", "auth"})
TARGETS = {  # the setting that names a tier's or service's address to its callers
    "repository": "ARCANA_REPOSITORY_TARGET",
    "service": "ARCANA_SERVICE_TARGET",
    "auth": "ARCANA_AUTH_TARGET",
    "users": "ARCANA_USERS_TARGET",
}
OWN_DATABASE = ("users", "auth")  # the microservices mode's services, each with its database


class UsageError(ValueError):
    """A wrong ``up`` argument; the message is one line."""


@dataclass
class Process:
    name: str
    role: str
    environ: dict[str, str]
    http: str | None = None  # host:port
    grpc: str = ""
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def describe(self) -> str:
        pid = self.popen.pid if self.popen else "-"
        parts = [f"{self.name:<12} pid {pid:<7}", f"grpc {self.grpc}"]
        if self.http:
            parts.append(f"http http://{self.http}")
        return "  ".join(parts)


def parse_replicas(text: str, mode: str, network_database: bool = False) -> dict[str, int]:
    """``edge=2,...`` → counts per role (each role of the mode defaults to 1)."""
    counts = dict.fromkeys(TOPOLOGIES[mode], 1)
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, sep, number = item.partition("=")
        if not sep or not number.isdigit() or int(number) < 1:
            raise UsageError(f"--replicas: expected ROLE=N with N >= 1, got {item!r}")
        if role not in counts:
            raise UsageError(f"--replicas: {role!r} is not a role of the {mode} mode ({', '.join(counts)})")
        if int(number) > 1 and role in NETWORK_REPLICABLE and not network_database:
            raise UsageError(
                f"--replicas: {role} runs as one process on SQLite (several need ARCANA_DATABASE_URL=mysql://...)"
            )
        counts[role] = int(number)
    return counts


def service_database(url: str, service: str) -> str:
    """The database of a microservices-mode service, named after ``url``'s: ``<stem>_<service>`` beside a
    SQLite file, ``<name>_<service>`` on a network database's server."""
    parsed = sa.make_url(url)
    name = parsed.database or "arcana"
    if parsed.get_backend_name() == "sqlite":
        path = Path(name)
        renamed = str(path.with_name(f"{path.stem}_{service}{path.suffix or '.db'}"))
    else:
        renamed = f"{name}_{service}"
    return parsed.set(database=renamed).render_as_string(hide_password=False)


def plan(settings: Settings, mode: str, replicas: dict[str, int], base_port: int | None) -> list[Process]:
    """The processes of the topology with their ports: consecutive from ``base_port``, else the first edge on
    the configured ports and every other process on free ports. Each process gets the addresses of the tiers
    or services it calls (every replica of each, as a list), whatever the start order."""
    ports = iter(range(base_port, base_port + 1000)) if base_port else None

    def port() -> int:
        return next(ports) if ports else _free_port()

    processes = []
    inherited = {key: value for key, value in os.environ.items() if key not in ("ARCANA_MODE", "ARCANA_ROLE")}
    targets: dict[str, str] = {}
    for role in TOPOLOGIES[mode]:
        for index in range(replicas[role]):
            first_edge = role == "edge" and index == 0 and ports is None
            grpc_port = settings.grpc_port if first_edge else port()
            environ = inherited | {"ARCANA_MODE": mode, "ARCANA_ROLE": role, "ARCANA_GRPC_PORT": str(grpc_port)}
            environ |= {"ARCANA_GRPC_HOST": HOST}
            process = Process(f"{role}-{index + 1}", role, environ, grpc=f"{HOST}:{grpc_port}")
            if role == "edge":
                http_port = settings.http_port if first_edge else port()
                environ |= {"ARCANA_HTTP_HOST": HOST, "ARCANA_HTTP_PORT": str(http_port)}
                process.http = f"{HOST}:{http_port}"
            if mode == "microservices" and role in OWN_DATABASE:
                environ["ARCANA_DATABASE_URL"] = service_database(settings.effective_database_url, role)
            elif mode == "microservices":
                environ.pop("ARCANA_DATABASE_URL", None)  # the edge has no database
            if role in TARGETS:  # several replicas: the list their callers balance over (infra.targets)
                listed = targets.get(TARGETS[role]) if index else None
                targets[TARGETS[role]] = f"{listed},{process.grpc}" if listed else process.grpc
            processes.append(process)
    for process in processes:
        for needed in NEEDS.get((mode, process.role), ()):
            variable = f"ARCANA_{needed.upper()}"
            process.environ[variable] = targets[variable]
    return processes


def prepare_databases(settings: Settings, mode: str) -> list[str]:
    """Create (on a network server) and migrate the microservices mode's databases; their URLs."""
    if mode != "microservices":
        return []
    from py_app.infra import migrations

    urls = [service_database(settings.effective_database_url, service) for service in OWN_DATABASE]
    for url in urls:
        if not url.startswith("sqlite"):
            _create_database(url)
        migrations.upgrade(url, "head")
    return urls


def _create_database(url: str) -> None:
    import asyncio

    from py_app.infra.db import create_engine

    parsed = sa.make_url(url)

    async def create() -> None:
        engine = create_engine(parsed.set(database="").render_as_string(hide_password=False))
        try:
            async with engine.begin() as connection:
                await connection.exec_driver_sql(
                    f"CREATE DATABASE IF NOT EXISTS `{parsed.database}` CHARACTER SET utf8mb4"
                )
        finally:
            await engine.dispose()

    asyncio.run(create())


def up(settings: Settings, mode: str, replicas_text: str, base_port: int | None) -> int:
    try:
        network = settings.effective_database_url.startswith(("mysql", "mariadb"))
        processes = plan(settings, mode, parse_replicas(replicas_text, mode, network), base_port)
    except UsageError as exc:
        print(f"arcana up: {exc}", file=sys.stderr)
        return 2
    try:
        for url in prepare_databases(settings, mode):
            print(f"database {sa.make_url(url).render_as_string(hide_password=True)} migrated", flush=True)
    except Exception as exc:  # noqa: BLE001 - any driver or Alembic failure, as one line
        print(f"arcana up: cannot prepare the databases: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for process in processes:
            process.popen = subprocess.Popen(
                # Its own session: a Ctrl-C reaches only `up`, which stops the edges before the tiers behind them.
                [sys.executable, "-m", "py_app", "serve"],
                env=process.environ,
                start_new_session=True,
            )
            print(process.describe(), flush=True)
        failed = _wait_ready(processes, stopping)
        if failed is None:
            print(f"ready: {mode}, {len(processes)} processes", flush=True)
            if hint := _admin_hint(processes):
                print(hint, flush=True)
            failed = _watch(processes, stopping)
        if failed is not None:
            print(f"arcana up: {failed}", file=sys.stderr, flush=True)
    finally:
        clean = _stop_all(processes, settings.shutdown_grace + STOP_MARGIN)
    return 0 if failed is None and clean else 1


def _admin_hint(processes: list[Process]) -> str:
    """How to make an account here in the microservices mode: accounts are written by the users service, so
    `create-admin` runs with its settings (a password in the database URL shows as ***)."""
    users = next((process for process in processes if process.role == "users"), None)
    if users is None:
        return ""
    url = sa.make_url(users.environ["ARCANA_DATABASE_URL"]).render_as_string(hide_password=True)
    auth = users.environ["ARCANA_AUTH_TARGET"]
    return (
        f"to create an admin (through the users service): ARCANA_MODE=microservices ARCANA_ROLE=users "
        f"ARCANA_AUTH_TARGET={auth} ARCANA_DATABASE_URL={url} "
        "python -m py_app create-admin --username NAME --email EMAIL"
    )


def _wait_ready(processes: list[Process], stopping: list[int]) -> str | None:
    deadline = time.monotonic() + READY_SECONDS
    waiting = list(processes)
    while waiting:
        if stopping:
            return "stopped before ready"
        if (early := _exited(processes)) is not None:
            return early
        waiting = [process for process in waiting if not _ready(process)]
        if time.monotonic() > deadline:
            return "not ready within {:g}s: {}".format(READY_SECONDS, ", ".join(p.name for p in waiting))
        if waiting:
            time.sleep(0.2)
    return None


def _watch(processes: list[Process], stopping: list[int]) -> str | None:
    """Until a signal, or until a role has no process left: a replica that exits is reported, its callers
    go on with the others (the topology runs on, and `up` will exit 1)."""
    reported: set[str] = set()
    while not stopping:
        gone = {p.name for p in processes if p.popen is not None and p.popen.poll() is not None}
        for process in processes:
            if process.name in gone - reported:
                assert process.popen is not None
                left = [p.name for p in processes if p.role == process.role and p.name not in gone]
                if not left:
                    return f"{process.name} exited with {process.popen.returncode}"
                print(
                    f"arcana up: {process.name} exited with {process.popen.returncode}; {', '.join(left)} go on",
                    file=sys.stderr,
                    flush=True,
                )
                reported.add(process.name)
        time.sleep(0.2)
    return None


def _exited(processes: list[Process]) -> str | None:
    for process in processes:
        assert process.popen is not None
        if process.popen.poll() is not None:
            return f"{process.name} exited with {process.popen.returncode}"
    return None


def _ready(process: Process) -> bool:
    if process.http:
        try:
            with urllib.request.urlopen(f"http://{process.http}/health/ready", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            # HTTPException: something else answers on the port (seen in CI: another test's gRPC server had
            # taken it between the port's choice and the bind): not ready, and `up` reports it, never a traceback
            return False
    with grpc.insecure_channel(process.grpc) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _stop_all(processes: list[Process], patience: float) -> bool:
    """Stop the edges first, then the tiers behind them; True when every process exited 0."""
    clean = True
    for process in reversed(processes):
        popen = process.popen
        if popen is None:
            continue
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(patience)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
            print(f"arcana up: {process.name} did not stop within {patience:g}s and was killed", file=sys.stderr)
        clean = clean and popen.returncode == 0
        print(f"{process.name:<12} stopped ({popen.returncode})", flush=True)
    return clean


# Free ports come from below the kernel's ephemeral range. A port taken there by bind(0) is only free until
# the child binds it, seconds later, and in between any outgoing connection on the machine may be given it as
# its local port; below the range only another listener can take it.
FREE_PORTS = range(20000, 32768)


def _free_port() -> int:
    floor = _ephemeral_floor()
    low = min(FREE_PORTS.stop, floor) if floor > FREE_PORTS.start + 100 else FREE_PORTS.stop
    for _ in range(200):
        candidate = random.randrange(FREE_PORTS.start, low)  # noqa: S311 - a port, not a secret
        with socket.socket() as probe:
            try:
                probe.bind((HOST, candidate))
            except OSError:
                continue
            return candidate
    with socket.socket() as probe:  # the range is crowded: let the kernel choose
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return FREE_PORTS.stop
