"""Private database and Redis servers for fault tests: own port, own data directory, broken on purpose.

The shared MariaDB and Redis other tests use are never stopped or frozen; a fault test starts one of these,
freezes it (SIGSTOP: the server stops answering but keeps its connections open, as a hung host does),
kills it, and always cleans it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import free_port, unavailable

MARIADBD = "/usr/sbin/mariadbd"
START_SECONDS = 30


class PrivateServer:
    """A server process of the test's own; ``freeze``/``thaw`` stop and resume it without closing anything,
    ``kill``/``restart`` end it as a crash does (SIGKILL) and start it again on the same port and data."""

    def __init__(self, arguments: list[str], port: int, folder: Path, *, greeting: bool) -> None:
        self.arguments = arguments
        self.port = port
        self.folder = folder
        self.greeting = greeting
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(15)

    def restart(self) -> None:
        """Start the killed server again (the port is free at once: the server sets SO_REUSEADDR)."""
        assert self.process.poll() is not None, "restart a killed server only"
        self.process = self._spawn()
        self.wait_answering()

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.thaw()
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)

    def wait_answering(self) -> None:
        """Until the port accepts a connection (and, for MariaDB, sends its greeting)."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                if not self.greeting or sock.recv(1):
                    return
            time.sleep(0.1)
        log = self.folder / "server.log"
        pytest.fail(f"private server on port {self.port} did not start:\n{log.read_text(errors='replace')[-2000:]}")


class PrivateMariaDB(PrivateServer):
    def url(self, database: str = "arcana") -> str:
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str = "arcana") -> str:
        async def create() -> None:
            from py_app.infra.db import create_engine

            engine = create_engine(self.url(""))
            try:
                async with engine.begin() as connection:
                    await connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            finally:
                await engine.dispose()

        asyncio.run(create())
        return self.url(name)


@contextlib.contextmanager
def private_mariadb(folder: Path) -> Iterator[PrivateMariaDB]:
    """A throw-away mariadbd: no grant tables (no passwords), a small InnoDB, its own port and directory."""
    if not Path(MARIADBD).exists():
        unavailable("mariadbd for a private server", FileNotFoundError(MARIADBD))
    folder.mkdir(parents=True)
    (folder / "data").mkdir()
    port = free_port()
    arguments = [
        MARIADBD,
        "--no-defaults",
        f"--datadir={folder / 'data'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={folder / 'mariadb.sock'}",
        f"--pid-file={folder / 'mariadb.pid'}",
        f"--log-error={folder / 'server.log'}",
        "--skip-grant-tables",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=16M",
        "--innodb-log-file-size=8M",
        *(["--user=root"] if os.geteuid() == 0 else []),
    ]
    server = PrivateMariaDB(arguments, port, folder, greeting=True)
    try:
        server.wait_answering()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def private_redis(folder: Path) -> Iterator[PrivateServer]:
    """A throw-away redis-server on its own port, persisting nothing."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server for a private server", FileNotFoundError("redis-server"))
        raise AssertionError("unreachable")
    folder.mkdir(parents=True)
    port = free_port()
    arguments = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    arguments += ["--dir", str(folder), "--logfile", str(folder / "server.log")]
    server = PrivateServer(arguments, port, folder, greeting=False)
    try:
        server.wait_answering()
        yield server
    finally:
        server.stop()


def query(url: str, statement: str) -> list[tuple[object, ...]]:
    """Rows of one statement, straight from a database (not through the service under test)."""

    async def run() -> list[tuple[object, ...]]:
        from py_app.infra.db import create_engine

        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return [tuple(row) for row in (await connection.execute(sa.text(statement))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(run())
