"""Key rotation across real processes: two servers (one with two workers) started at once on one key ring.

Every check is made in every serving process: gRPC calls go over a new connection each, and
InfoService/GetInfo on that connection names the process that answers, until each pid has answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import httpx
import jwt
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, info_pb2, info_pb2_grpc
from tests.e2e.support import ROOT, STOP_SECONDS, Server, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
OPTIONS = [("grpc.use_local_subchannel_pool", 1)]  # a new channel is a new connection, so maybe another process
PASSWORD = "correct horse battery"
GIVE_UP = 60.0


def shared_settings(shared: Path) -> dict[str, str]:
    return {
        "ARCANA_JWT_ALGORITHM": "EdDSA",
        "ARCANA_JWT_KEYS_DIR": str(shared / "keys"),
        "ARCANA_JWT_KEYS_CHECK_INTERVAL": "0.2",
        "ARCANA_JWT_SECRET": "e2e-refresh-chain-secret-0123456789abcdefghij",
        "ARCANA_DATABASE_URL": f"sqlite+aiosqlite:///{shared / 'arcana.db'}",
    }


def cli(shared: Path, *args: str) -> str:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ARCANA_")}
    environ.update(shared_settings(shared))
    done = subprocess.run(
        [sys.executable, "-m", "py_app", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


Call = Callable[[auth_pb2_grpc.AuthServiceStub], Awaitable[str]]


async def in_every_process(server: Server, workers: int, call: Call) -> dict[int, str]:
    """``call`` answered by each of the server's ``workers`` processes: pid -> what it returned."""
    answers: dict[int, str] = {}
    deadline = time.monotonic() + GIVE_UP
    while len(answers) < workers:
        assert time.monotonic() < deadline, f"only {sorted(answers)} of {workers} processes answered"
        async with grpc.aio.insecure_channel(server.grpc, options=OPTIONS) as channel:
            info = await info_pb2_grpc.InfoServiceStub(channel).GetInfo(info_pb2.GetInfoRequest(), timeout=5)
            if info.pid not in answers:
                answers[info.pid] = await call(auth_pb2_grpc.AuthServiceStub(channel))
    return answers


def validate(token: str) -> Call:
    async def call(auth: auth_pb2_grpc.AuthServiceStub) -> str:
        try:
            await auth.ValidateToken(auth_pb2.ValidateTokenRequest(access_token=token), timeout=5)
        except grpc.aio.AioRpcError as error:
            return str(error.code().name)
        return "OK"

    return call


def login_kid(username: str) -> Call:
    async def call(auth: auth_pb2_grpc.AuthServiceStub) -> str:
        tokens = await auth.Login(auth_pb2.LoginRequest(username_or_email=username, password=PASSWORD), timeout=10)
        return str(jwt.get_unverified_header(tokens.access_token)["kid"])

    return call


async def everywhere(servers: list[tuple[Server, int]], call: Call) -> set[str]:
    """What every process of every server answers (the set of distinct answers)."""
    answers: set[str] = set()
    for server, workers in servers:
        answers |= set((await in_every_process(server, workers, call)).values())
    return answers


async def until_everywhere(servers: list[tuple[Server, int]], call: Call, wanted: str) -> None:
    deadline = time.monotonic() + GIVE_UP
    while (answers := await everywhere(servers, call)) != {wanted}:
        assert time.monotonic() < deadline, f"processes answered {answers}, not only {wanted!r}"
        await asyncio.sleep(0.2)


def published(server: Server) -> set[str]:
    response = httpx.get(f"{server.http}/.well-known/jwks.json", timeout=5)
    assert response.headers["cache-control"] == "public, max-age=600"
    return {key["kid"] for key in response.json()["keys"]}


def me(server: Server, token: str) -> int:
    return httpx.get(
        f"{server.http}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).status_code


def stop(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(STOP_SECONDS)
    finally:
        server.stop()


@pytest.mark.req("SRS-108", "SRS-109")
def test_rotation_reaches_every_process_old_tokens_verify_and_retired_keys_fail(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    cli(shared, "migrate")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # Started together on an empty key directory: both make the ring at the same moment, one wins.
    a = start([sys.executable, "-m", "py_app", "serve"], tmp_path / "a", ARCANA_WORKERS="2", **shared_settings(shared))
    b = start([sys.executable, "-m", "py_app", "serve"], tmp_path / "b", **shared_settings(shared))
    servers = [(a, 2), (b, 1)]
    try:
        a.wait_ready()
        b.wait_ready()
        (first,) = published(a)
        assert published(b) == {first}

        name = f"kr{uuid.uuid4().hex[:8]}"
        made = httpx.post(
            f"{a.http}/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            timeout=10,
        ).json()
        before = made["access_token"]
        assert jwt.get_unverified_header(before)["kid"] == first
        assert asyncio.run(everywhere(servers, validate(before))) == {"OK"}

        rotated = cli(shared, "rotate-keys", "--delay", "8").splitlines()
        assert rotated[0].startswith("added key ")
        second = rotated[0].split()[2].rstrip(":")
        assert rotated[1].startswith(f"key {first} verifies until")
        deadline = time.monotonic() + 5
        while not published(a) == published(b) == {first, second}:  # published within a check interval ...
            assert time.monotonic() < deadline, (published(a), published(b))
            time.sleep(0.1)
        assert asyncio.run(everywhere(servers, login_kid(name))) == {first}  # ... signing only after the delay
        asyncio.run(until_everywhere(servers, login_kid(name), second))  # every process signs with the new key
        assert published(a) == published(b) == {first, second}
        assert asyncio.run(everywhere(servers, validate(before))) == {"OK"}  # signed before rotation, still valid
        assert (me(a, before), me(b, before)) == (200, 200)

        after = httpx.post(
            f"{b.http}/api/v1/auth/login", json={"username_or_email": name, "password": PASSWORD}, timeout=10
        ).json()["access_token"]
        assert asyncio.run(everywhere(servers, validate(after))) == {"OK"}  # signed by B, verified by A's workers

        assert f"retired key {first}" in cli(shared, "rotate-keys", "--now", "--retire-previous")
        asyncio.run(until_everywhere(servers, validate(before), "UNAUTHENTICATED"))
        assert asyncio.run(everywhere(servers, validate(after))) == {"UNAUTHENTICATED"}
        assert (me(a, before), me(b, before)) == (401, 401)
        assert first not in published(a) | published(b)
        third = asyncio.run(everywhere(servers, login_kid(name)))
        assert len(third) == 1
        assert third.isdisjoint({first, second})
        assert (stop(a), stop(b)) == (0, 0)
    finally:
        a.stop()
        b.stop()
    for server in (a, b):
        assert "Traceback" not in server.output()
        assert "key ring not applied" not in server.output()
        assert "signing keys changed" in server.output()
