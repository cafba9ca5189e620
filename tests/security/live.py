"""The live servers the attack suite aims at: real ``python -m py_app serve`` processes with a real SMTP sink.

Each is migrated, has its first administrator, and runs with rate limits and lockout ON. The limits are raised
(``ARCANA_LIMIT_*``) only so that a few hundred attacks from one address do not trip them; what they throttle,
and when, is proven by tests/e2e/test_limits.py.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.contract.clients import PASSWORD, Client, GrpcClient, RestClient
from tests.e2e.support import ROOT, STOP_SECONDS, Server, start
from tests.support.logs import at_levels
from tests.support.smtp import Sink, start_sink

ADMIN = "root"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "attack-suite-admin-passphrase-amber-kestrel-91"
V1 = "/api/v1"
RAISED_LIMITS = {
    "ARCANA_LIMIT_REGISTER_ADDRESS": "100000/3600",
    "ARCANA_LIMIT_LOGIN_ADDRESS": "100000/60",
    "ARCANA_LIMIT_LOGIN_ACCOUNT": "100/900",
    "ARCANA_LIMIT_FORGOT_ACCOUNT": "100/60,1000/3600",
    "ARCANA_LIMIT_FORGOT_ADDRESS": "100000/3600",
    "ARCANA_LIMIT_RESEND_ACCOUNT": "100/60,1000/3600",
    "ARCANA_LIMIT_RESEND_ADDRESS": "100000/3600",
}


@dataclass(frozen=True)
class Live:
    """One running server: where it listens, its data directory, its mail sink and its logged-in admin."""

    server: Server
    data_dir: Path
    mail: Sink
    admin_access: str
    admin_id: str

    @property
    def http(self) -> str:
        return self.server.http

    @property
    def grpc(self) -> str:
        return self.server.grpc

    def jwt_secret(self) -> str:
        """The development HS256 secret the server generated under its data directory."""
        return (self.data_dir / "jwt_secret").read_text().strip()

    def tables(self) -> dict[str, int]:
        """Every table of the server's SQLite database and its row count, read beside the server (read-only)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.data_dir / 'arcana.db'}?mode=ro", uri=True)) as db:
            names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {name: int(db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}


def _cli(environ: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "py_app", *args], cwd=ROOT, env=environ, capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, f"py_app {args[0]}: {done.stdout!r} {done.stderr!r}"


def serve(base: Path, **settings: str) -> Iterator[Live]:
    """Migrate, create the admin, serve; yield the live server; SIGTERM it (and the sink) at the end."""
    mail = start_sink(base / "maildir")
    settings = {"ARCANA_SMTP_URL": mail.url, **RAISED_LIMITS, **settings}
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ARCANA_")}
    environ.update(ARCANA_DATA_DIR=str(base / "var"), **settings)
    server: Server | None = None
    try:
        _cli(environ, "migrate")
        _cli(environ, "create-admin", "--username", ADMIN, "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
        server = start([sys.executable, "-m", "py_app", "serve"], base, **settings)
        server.wait_ready()
        login = httpx.post(
            f"{server.http}{V1}/auth/login",
            json={"username_or_email": ADMIN, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        body = login.json()
        yield Live(server, base / "var", mail, body["access_token"], body["user"]["id"])
        assert_quiet(server.output())
    finally:
        if server is not None:
            _terminate(server)
        mail.stop()


def assert_quiet(log: str) -> None:
    """After every attack: nothing logged as an error or with a traceback, and no password in the log."""
    loud = at_levels(log, "error", "critical")
    assert not loud, loud[:5]
    assert "Traceback" not in log, log[-3000:]
    for password in (PASSWORD, ADMIN_PASSWORD):
        assert password not in log, "a password reached the log"


def _terminate(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.stop()


@contextlib.asynccontextmanager
async def connect(protocol: str, live: Live) -> AsyncIterator[Client]:
    """A client of ``live`` over ``protocol`` (httpx and grpc.aio objects belong to the test's own loop)."""
    made: Client = RestClient(live.http) if protocol == "rest" else GrpcClient(live.grpc)
    try:
        yield made
    finally:
        await made.aclose()


PROTOCOLS = pytest.mark.parametrize("protocol", ["rest", "grpc"])


@dataclass(frozen=True)
class Account:
    """An account registered for a test, with its first session."""

    username: str
    email: str
    password: str
    id: str
    access: str
    refresh: str


def register(live: Live, username: str, password: str = PASSWORD, email: str = "") -> Account:
    """A new account over REST, outside any test's event loop (for package-scoped fixtures)."""
    email = email or f"{username}@example.com"
    response = httpx.post(
        f"{live.http}{V1}/auth/register",
        json={"username": username, "email": email, "password": password},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(username, email, password, body["user"]["id"], body["access_token"], body["refresh_token"])
