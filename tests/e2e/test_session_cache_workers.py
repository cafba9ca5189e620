"""The session cache with two workers on one SQLite file: once a logout or a suspension has been acknowledged
by one worker, every worker refuses the token on its very next request, over gRPC and REST.

Each worker serves both protocols on its own loop and its own cache. Every gRPC check is made in every
process: each call goes over a new connection, and InfoService/GetInfo on that connection names the process
that answers, until both pids have answered. The cache is warmed the same way, so each worker holds the
session before it ends.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, info_pb2, info_pb2_grpc, users_pb2, users_pb2_grpc
from tests.e2e.support import Server, command, migrate, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
OPTIONS = [("grpc.use_local_subchannel_pool", 1)]  # a new channel is a new connection, so maybe another process
PASSWORD = "correct horse battery"
WORKERS = 2
GIVE_UP = 60.0
V1 = "/api/v1"

Call = Callable[[grpc.aio.Channel], Awaitable[str]]


async def in_every_process(server: Server, call: Call) -> dict[int, str]:
    """``call`` answered by each worker process: pid -> what it returned."""
    answers: dict[int, str] = {}
    deadline = time.monotonic() + GIVE_UP
    while len(answers) < WORKERS:
        assert time.monotonic() < deadline, f"only {sorted(answers)} of {WORKERS} processes answered"
        async with grpc.aio.insecure_channel(server.grpc, options=OPTIONS) as channel:
            info = await info_pb2_grpc.InfoServiceStub(channel).GetInfo(info_pb2.GetInfoRequest(), timeout=5)
            if info.pid not in answers:
                answers[info.pid] = await call(channel)
    return answers


def get_user(token: str, user_id: str) -> Call:
    async def call(channel: grpc.aio.Channel) -> str:
        bearer = (("authorization", f"Bearer {token}"),)
        try:
            await users_pb2_grpc.UserServiceStub(channel).GetUser(
                users_pb2.GetUserRequest(id=user_id), metadata=bearer, timeout=5
            )
            await auth_pb2_grpc.AuthServiceStub(channel).Me(auth_pb2.MeRequest(), metadata=bearer, timeout=5)
        except grpc.aio.AioRpcError as error:
            return str(error.code().name)
        return "OK"

    return call


def rest_answers(server: Server, token: str, user_id: str, connections: int = 10) -> set[int]:
    """The statuses of GET /users/{id} and GET /auth/me, each on a new connection (either worker may answer)."""
    statuses = set()
    for _ in range(connections):
        with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            statuses.add(client.get(f"{V1}/users/{user_id}").status_code)
            statuses.add(client.get(f"{V1}/auth/me").status_code)
    return statuses


def session(server: Server, username: str, password: str) -> tuple[str, str]:
    response = httpx.post(
        f"{server.http}{V1}/auth/login", json={"username_or_email": username, "password": password}, timeout=30
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"]), str(response.json()["user"]["id"])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    migrate(tmp_path)
    made = command(
        tmp_path,
        "create-admin",
        "--username",
        "root",
        "--email",
        "root@example.com",
        ARCANA_ADMIN_PASSWORD=PASSWORD,
    )
    assert made.returncode == 0, made.stderr
    started = start([sys.executable, "-m", "py_app", "serve"], tmp_path, ARCANA_WORKERS=str(WORKERS))
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def register(server: Server) -> tuple[str, str]:
    name = f"u{uuid.uuid4().hex[:10]}"
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    response = httpx.post(f"{server.http}{V1}/auth/register", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return session(server, name, PASSWORD)


@pytest.mark.req("SRS-121")
def test_a_logout_acknowledged_by_one_worker_is_refused_by_every_worker_at_once(server: Server) -> None:
    token, user_id = register(server)
    assert set(asyncio.run(in_every_process(server, get_user(token, user_id))).values()) == {"OK"}  # cached
    assert rest_answers(server, token, user_id) == {200}
    logout = httpx.post(f"{server.http}{V1}/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert logout.status_code == 204, logout.text
    assert set(asyncio.run(in_every_process(server, get_user(token, user_id))).values()) == {"UNAUTHENTICATED"}
    assert rest_answers(server, token, user_id) == {401}


@pytest.mark.req("SRS-121")
def test_a_suspension_acknowledged_by_one_worker_is_refused_by_every_worker_at_once(server: Server) -> None:
    admin, _ = session(server, "root", PASSWORD)
    token, user_id = register(server)
    assert set(asyncio.run(in_every_process(server, get_user(token, user_id))).values()) == {"OK"}
    assert rest_answers(server, token, user_id) == {200}
    suspended = httpx.put(
        f"{server.http}{V1}/users/{user_id}/status",
        json={"status": "suspended"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert suspended.status_code == 200, suspended.text
    assert set(asyncio.run(in_every_process(server, get_user(token, user_id))).values()) == {"UNAUTHENTICATED"}
    assert rest_answers(server, token, user_id) == {401}


def first_name(token: str, user_id: str) -> Call:
    async def call(channel: grpc.aio.Channel) -> str:
        bearer = (("authorization", f"Bearer {token}"),)
        found = await users_pb2_grpc.UserServiceStub(channel).GetUser(
            users_pb2.GetUserRequest(id=user_id), metadata=bearer, timeout=5
        )
        me = await auth_pb2_grpc.AuthServiceStub(channel).Me(auth_pb2.MeRequest(), metadata=bearer, timeout=5)
        return f"{found.first_name}/{me.first_name}"

    return call


def rest_first_names(server: Server, token: str, user_id: str, connections: int = 10) -> set[str]:
    names = set()
    for _ in range(connections):
        with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            names.add(
                f"{client.get(f'{V1}/users/{user_id}').json()['first_name']}/{client.get(f'{V1}/auth/me').json()['first_name']}"
            )
    return names


@pytest.mark.req("SRS-255")
def test_a_profile_change_acknowledged_by_one_worker_is_read_by_every_worker_at_once(server: Server) -> None:
    """The user records are cached too (GET /users/{id}, me): the next read after the acknowledgement is the new one."""
    token, user_id = register(server)
    assert set(asyncio.run(in_every_process(server, first_name(token, user_id))).values()) == {"/"}  # cached
    assert rest_first_names(server, token, user_id) == {"/"}
    for name in ("Alice", "Alicia"):
        changed = httpx.patch(
            f"{server.http}{V1}/users/{user_id}",
            json={"first_name": name},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert changed.status_code == 200, changed.text
        assert set(asyncio.run(in_every_process(server, first_name(token, user_id))).values()) == {f"{name}/{name}"}
        assert rest_first_names(server, token, user_id) == {f"{name}/{name}"}
