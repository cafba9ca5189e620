"""Debug logs carry no secrets: a real server at ARCANA_LOG_LEVEL=debug, driven over REST and gRPC, on each backend.

Everything the processes print (the server's whole output, with its request and security-event lines, `migrate`
and `create-admin`) and every span the server exports (tracing on, to a stand-in collector) is scanned for every
secret the run produced: passwords, the stored argon2 hashes, the stored refresh-token digests, the tokens
themselves and the emails.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
import sqlalchemy as sa

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from py_app.infra.db import create_engine
from tests.conftest import free_port
from tests.e2e.support import STOP_SECONDS, command, start
from tests.support.logs import at_levels
from tests.support.otlp import collector

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240), pytest.mark.req("SRS-160", "SRS-137")]
DEBUG = {"ARCANA_LOG_LEVEL": "debug", "ARCANA_LOG_FORMAT": "json"}


async def stored_secrets(database_url: str) -> list[str]:
    """What the database holds that must never be printed: password hashes and refresh-token digests."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            hashes = (await connection.execute(sa.text("SELECT password_hash FROM users"))).scalars().all()
            digests = (await connection.execute(sa.text("SELECT digest FROM refresh_tokens"))).scalars().all()
    finally:
        await engine.dispose()
    assert hashes
    assert digests
    return [*hashes, *digests]


def over_rest(base: str, name: str, password: str) -> list[str]:
    email = f"{name}@example.com"
    with httpx.Client(base_url=f"{base}/api/v1", timeout=20, headers={"X-Request-ID": f"scan-{name}"}) as http:
        made = http.post("/auth/register", json={"username": name, "email": email, "password": password})
        assert made.status_code == 201, made.text
        login = http.post("/auth/login", json={"username_or_email": email, "password": password})
        assert login.status_code == 200, login.text
        refreshed = http.post("/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        me = http.get("/auth/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
        assert me.status_code == 200, me.text
    tokens = [made.json(), login.json(), refreshed.json()]
    return [email, *(body[key] for body in tokens for key in ("access_token", "refresh_token"))]


async def over_grpc(target: str, name: str, password: str) -> list[str]:
    email = f"{name}@example.com"
    async with grpc.aio.insecure_channel(target) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        made = await auth.Register(auth_pb2.RegisterRequest(username=name, email=email, password=password), timeout=20)
        login = await auth.Login(auth_pb2.LoginRequest(username_or_email=name, password=password), timeout=20)
        refreshed = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=login.refresh_token), timeout=20)
        bearer = [("authorization", f"Bearer {refreshed.access_token}")]
        await auth.Me(auth_pb2.MeRequest(), metadata=bearer, timeout=20)
    answers = (made, login, refreshed)
    return [email, *(token for answer in answers for token in (answer.access_token, answer.refresh_token))]


def assert_no_secret(output: str, secrets: list[str], where: str) -> None:
    leaked = [secret[:12] + "…" for secret in secrets if secret and secret in output]
    assert not leaked, f"{where} printed secrets: {leaked}"


def test_a_debug_level_server_prints_no_password_hash_digest_token_or_email(tmp_path: Path, database_url: str) -> None:
    settings = {**DEBUG, "ARCANA_DATABASE_URL": database_url}
    suffix = uuid.uuid4().hex[:8]
    passwords = [f"admin passphrase {suffix}", f"rest passphrase {suffix}", f"grpc passphrase {suffix}"]
    migrated = command(tmp_path, "migrate", **settings)
    assert migrated.returncode == 0, migrated.stderr
    admin_email = f"root{suffix}@example.com"
    admin = command(
        tmp_path, "create-admin", "--username", f"root{suffix}", "--email", admin_email, "--password", passwords[0],
        **settings,
    )  # fmt: skip
    assert admin.returncode == 0, admin.stderr
    assert at_levels(admin.stderr, "debug"), "create-admin did not run at debug level"
    with collector(free_port()) as sink:
        server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, ARCANA_OTEL_ENDPOINT=sink.url, **settings)
        try:
            server.wait_ready()
            secrets = [*passwords, admin_email]
            secrets += over_rest(server.http, f"rest{suffix}", passwords[1])
            secrets += asyncio.run(over_grpc(server.grpc, f"grpc{suffix}", passwords[2]))
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(STOP_SECONDS) == 0, server.output()[-3000:]
        finally:
            server.stop()
        spans = sink.spans()  # the server flushed them before it exited
    secrets += asyncio.run(stored_secrets(database_url))
    output = server.output()
    assert at_levels(output, "debug"), "the server did not run at debug level"
    logins = [
        (entry.get("method"), entry.get("route"))
        for entry in at_levels(output, "info")
        if entry.get("request_id") == f"scan-rest{suffix}"
    ]
    assert ("POST", "/api/v1/auth/login") in logins, logins
    assert {"POST /api/v1/auth/login", "arcana.v1.AuthService/Login"} <= {span.name for span in spans}
    assert_no_secret(repr(spans), secrets, "the exported spans")
    assert_no_secret(output, secrets, "the server")
    assert_no_secret(admin.stdout + admin.stderr, secrets, "create-admin")
    assert_no_secret(migrated.stdout + migrated.stderr, secrets, "migrate")
