"""The processes of a run: databases, the service, ceilings and baselines, each pinned to its cores.

A ``Stack`` owns everything it starts (processes, data directories, MariaDB databases) and removes it
on close. ``LAUNCHERS`` maps a target's launcher name to the function that starts it; a new kind of
target (a deployment mode with extra hops) is a new launcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.plan import TARGETS, Target
from benchmarks.seed import SeededData, seed
from benchmarks.wire import PASSWORD, Accounts

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
MARIADB = "root@127.0.0.1:3306"
READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env() -> dict[str, str]:
    """The environment without the caller's ARCANA_* settings: each launcher sets its own."""
    return {key: value for key, value in os.environ.items() if not key.startswith("ARCANA_")}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to this process's own group (it was started as a group leader), then SIGKILL."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


@dataclass
class Database:
    backend: str
    env_url: str  # what ARCANA_DATABASE_URL gets
    async_url: str  # the seeder's
    sync_url: str  # the baselines'
    seeded: SeededData
    mariadb_name: str | None = None


@dataclass
class Endpoint:
    target: Target
    rest_url: str | None
    grpc_addr: str | None
    procs: list[Proc]
    database: Database | None = None
    accounts: Accounts | None = None
    rest_pid: int = 0  # the process that serves each protocol (for profiles and CPU accounting)
    grpc_pid: int = 0

    def url(self, path: str) -> str:
        return f"{self.rest_url}{path}"


@dataclass
class Stack:
    workdir: Path
    say: Callable[[str], None] = print
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    databases: dict[str, Database] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    accounts: dict[str, Accounts] = field(default_factory=dict)
    _procs: list[Proc] = field(default_factory=list)

    def __enter__(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- processes -------------------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], env: dict[str, str], cpus: str) -> Proc:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                ["taskset", "-c", cpus, *argv],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self._procs):
            proc.stop()
        self._procs.clear()
        for database in self.databases.values():
            if database.mariadb_name:
                with contextlib.suppress(Exception):
                    asyncio.run(_mariadb(f"DROP DATABASE IF EXISTS `{database.mariadb_name}`"))
        self.databases.clear()

    # -- data ------------------------------------------------------------------------------------
    def database(self, backend: str) -> Database:
        """Created, migrated and seeded once per run and backend; every target of the backend shares it."""
        if backend in self.databases:
            return self.databases[backend]
        started = time.monotonic()
        if backend == "sqlite":
            path = self.workdir / "sqlite" / "arcana.db"
            if path.parent.exists():
                shutil.rmtree(path.parent)
            path.parent.mkdir(parents=True)
            env_url, async_url, sync_url, name = (
                f"sqlite:///{path}",
                f"sqlite+aiosqlite:///{path}",
                f"sqlite:///{path}",
                None,
            )
        elif backend == "mariadb":
            name = f"arcana_bench_{os.getpid()}_{secrets.token_hex(3)}"
            asyncio.run(_mariadb(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
            env_url = f"mysql+asyncmy://{MARIADB}/{name}"
            async_url = f"{env_url}?charset=utf8mb4"
            sync_url = f"mysql+pymysql://{MARIADB}/{name}?charset=utf8mb4"
        else:
            raise ValueError(f"unknown backend {backend!r}")
        env = {**base_env(), "ARCANA_DATABASE_URL": env_url, "ARCANA_DATA_DIR": str(self.workdir / backend)}
        subprocess.run([PY, "-m", "py_app", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
        seeded = asyncio.run(seed(async_url))
        database = Database(backend, env_url, async_url, sync_url, seeded, name)
        self.databases[backend] = database
        self.say(
            f"  {backend}: migrated and seeded {len(seeded.user_ids) + 3} users in {time.monotonic() - started:.1f} s"
        )
        return database

    def accounts_for(self, backend: str) -> Accounts:
        """Tokens from real logins; a service of the backend is started for them if none runs yet."""
        if backend not in self.accounts:
            service = next(
                (e for e in self.endpoints.values() if e.target.kind == "service" and e.target.backend == backend),
                None,
            ) or self.start(TARGETS[backend])
            self.accounts[backend] = service.accounts or _login(service, self.databases[backend].seeded)
        return self.accounts[backend]

    def record_file(self) -> Path:
        """The record the ceilings serve: the benchmark user's, from the first backend seeded."""
        path = self.workdir / "record.json"
        if not path.exists():
            database = next(iter(self.databases.values()), None) or self.database("sqlite")
            path.write_text(json.dumps(database.seeded.record), encoding="utf-8")
        return path

    # -- targets ---------------------------------------------------------------------------------
    def start(self, target: Target) -> Endpoint:
        if target.name not in self.endpoints:
            began = time.monotonic()
            endpoint = LAUNCHERS[target.launcher](self, target)
            self.endpoints[target.name] = endpoint
            self.say(f"  {target.name}: up in {time.monotonic() - began:.1f} s ({target.note or target.kind})")
        return self.endpoints[target.name]


def _login(endpoint: Endpoint, seeded: SeededData) -> Accounts:
    tokens = {}
    with httpx.Client(base_url=endpoint.rest_url or "", timeout=30) as client:
        for name in ("bench_user", "bench_admin"):
            response = client.post("/api/v1/auth/login", json={"username_or_email": name, "password": PASSWORD})
            response.raise_for_status()
            tokens[name] = response.json()["access_token"]
    return Accounts(seeded.user_id, tokens["bench_user"], tokens["bench_admin"], seeded.login_name)


def _wait(endpoint: Endpoint, health_path: str | None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    addresses = [a for a in (endpoint.rest_url and endpoint.rest_url.removeprefix("http://"), endpoint.grpc_addr) if a]
    while True:
        dead = [proc for proc in endpoint.procs if not proc.alive()]
        if dead:
            tail = dead[0].log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{dead[0].name} exited with {dead[0].popen.returncode}:\n{tail}")
        if all(_accepts(address) for address in addresses) and _healthy(endpoint, health_path):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{endpoint.target.name} not ready after {READY_TIMEOUT:.0f} s")
        time.sleep(0.1)


def _accepts(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, int(port))) == 0


def _healthy(endpoint: Endpoint, path: str | None) -> bool:
    if path is None:
        return True
    try:
        return httpx.get(endpoint.url(path), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def launch_service(stack: Stack, target: Target) -> Endpoint:
    """``python -m py_app serve`` as the README starts it, with the target's settings."""
    assert target.backend is not None
    database = stack.database(target.backend)
    http_port, grpc_port = free_port(), free_port()
    data_dir = stack.workdir / target.name
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **base_env(),
        "ARCANA_DATA_DIR": str(data_dir),
        "ARCANA_DATABASE_URL": database.env_url,
        "ARCANA_HTTP_PORT": str(http_port),
        "ARCANA_GRPC_PORT": str(grpc_port),
        "ARCANA_WORKERS": "1",
        "ARCANA_JWT_SECRET": stack.secret,  # one key for every target and the Flask baseline
        "ARCANA_ACCESS_TOKEN_TTL": "7200",  # tokens minted at start outlive the run
        # Thousands of logins and refreshes a second from one address, of one account: the lockout and the
        # limits would answer most of them with 429 (issue 10.5 says load tests switch them off).
        "ARCANA_RATE_LIMITS": "off",
        **dict(target.env),
    }
    proc = stack.spawn(target.name, [PY, "-m", "py_app", "serve"], env, target.server_cpus)
    endpoint = Endpoint(
        target, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", [proc], database, rest_pid=proc.pid
    )
    endpoint.grpc_pid = proc.pid
    _wait(endpoint, "/health/ready")
    endpoint.accounts = stack.accounts.get(target.backend) or _login(endpoint, database.seeded)
    stack.accounts.setdefault(target.backend, endpoint.accounts)
    return endpoint


def launch_ceiling(stack: Stack, target: Target) -> Endpoint:
    env = {**base_env(), "BENCH_RECORD": str(stack.record_file())}
    http_port, grpc_port = free_port(), free_port()
    rest = stack.spawn(
        "ceiling-rest", [PY, "-m", "benchmarks.ceilings.rest_app", "--port", str(http_port)], env, target.server_cpus
    )
    grpc = stack.spawn(
        "ceiling-grpc", [PY, "-m", "benchmarks.ceilings.grpc_app", "--port", str(grpc_port)], env, target.server_cpus
    )
    endpoint = Endpoint(target, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", [rest, grpc])
    endpoint.rest_pid, endpoint.grpc_pid = rest.pid, grpc.pid
    _wait(endpoint, None)
    # The ceilings ignore credentials; the requests still carry the service's, byte for byte.
    database = next(iter(stack.databases.values()), None)
    endpoint.accounts = stack.accounts_for(database.backend) if database else None
    return endpoint


def launch_baseline(stack: Stack, target: Target) -> Endpoint:
    assert target.backend is not None
    database = stack.database(target.backend)
    accounts = stack.accounts_for(target.backend)
    env = {**base_env(), "BENCH_DB_URL": database.sync_url, "BENCH_JWT_SECRET": stack.secret}
    http_port, grpc_port = free_port(), free_port()
    gunicorn = str(Path(PY).parent / "gunicorn")
    argv = [gunicorn, "-k", "gthread", "-w", "1", "--threads", "8", "-b", f"127.0.0.1:{http_port}"]
    rest = stack.spawn(f"{target.name}-flask", [*argv, "benchmarks.baselines.flask_app:app"], env, target.server_cpus)
    grpc = stack.spawn(
        f"{target.name}-grpc",
        [PY, "-m", "benchmarks.baselines.grpc_sync", "--port", str(grpc_port)],
        env,
        target.server_cpus,
    )
    endpoint = Endpoint(
        target, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", [rest, grpc], database, accounts
    )
    endpoint.rest_pid, endpoint.grpc_pid = rest.pid, grpc.pid
    _wait(endpoint, None)
    return endpoint


LAUNCHERS: dict[str, Callable[[Stack, Target], Endpoint]] = {
    "service": launch_service,
    "ceiling": launch_ceiling,
    "baseline": launch_baseline,
}


async def _mariadb(statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"mysql+asyncmy://{MARIADB}/")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()
