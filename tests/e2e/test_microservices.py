"""The microservices mode as real processes: who owns what, how an account change crosses, and a service down.

(The whole contract suite against the microservices topology's edge is in tests/contract, backend ``microservices``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import msgspec
import pytest
import sqlalchemy as sa

from py_app._proto.arcana.internal.v1 import ports_pb2, ports_pb2_grpc
from py_app.core.identity import Principal
from py_app.infra import remote
from py_app.infra.service_auth import HEADER, ServiceCredential
from py_app.users.models import Status
from py_app.users.ports import UserUseCases
from tests.conftest import free_port
from tests.e2e.support import STOP_SECONDS, Server, command, start
from tests.e2e.test_layered import LISTED, READY_SECONDS, _descendants, _open_files, stops_cleanly

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
PASSWORD = "violet-harbour-lantern-42"
NEW_PASSWORD = "amber-meadow-compass-17"
ADMIN = "root"
ADMIN_PASSWORD = "microservices-admin-passphrase-calm-heron-31"
OWNED_BY_AUTH = ("sessions", "refresh_tokens", "account_tokens", "audit_events")


def _listed(server: Server) -> dict[str, dict[str, str]]:
    deadline = time.monotonic() + READY_SECONDS
    while "ready: microservices" not in server.output():
        if server.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"`up` not ready (exit {server.process.poll()}):\n{server.output()[-3000:]}")
        time.sleep(0.2)
    return {match["name"]: match.groupdict() for match in LISTED.finditer(server.output())}


def _users_settings(data: Path, auth: str) -> dict[str, str]:
    """The users service's settings (what `create-admin` runs with in this mode)."""
    return {
        "ARCANA_MODE": "microservices",
        "ARCANA_ROLE": "users",
        "ARCANA_AUTH_TARGET": auth,
        "ARCANA_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'arcana_users.db'}",
    }


def _create_admin(tmp_path: Path, auth: str) -> str:
    """The first admin, made through the users service's settings; its access token (logged in at the edge)."""
    settings = _users_settings(tmp_path / "var", auth)
    arguments = ("--username", ADMIN, "--email", "root@example.com", "--password", ADMIN_PASSWORD)
    made = command(tmp_path, "create-admin", *arguments, **settings)
    assert made.returncode == 0, made.stderr
    return made.stdout


def _login(http: str, name: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = httpx.post(f"{http}/api/v1/auth/login", json={"username_or_email": name, "password": password}, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _register(http: str) -> tuple[str, str, str]:
    """A fresh account: its name, id and access token."""
    name = f"mic{uuid.uuid4().hex[:10]}"
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    answer = httpx.post(f"{http}/api/v1/auth/register", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    return name, str(answer.json()["user"]["id"]), str(answer.json()["access_token"])


def _call(http: str, method: str, path: str, token: str, body: object = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{http}/api/v1{path}", json=body, headers=headers, timeout=30)


def _me(http: str, token: str) -> int:
    return _call(http, "GET", "/auth/me", token).status_code


def _rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return connection.execute(query).fetchall()


def _raw_call(target: str, port: str, method: str, arguments: tuple[Any, ...], token: str | None) -> Any:
    """One internal ``Services/Call``, as a caller from outside would make it: the decoded answer or the status."""
    protocol = {"UserUseCases": UserUseCases}.get(port)
    encoded = remote.port_methods(protocol).get(method) if protocol else None
    raw = encoded.encode_arguments(arguments, {}) if encoded else b"{}"
    request = ports_pb2.CallRequest(port=port, method=method, arguments=raw)
    with grpc.insecure_channel(target) as channel:
        try:
            reply = ports_pb2_grpc.ServicesStub(channel).Call(
                request, metadata=((HEADER, token),) if token is not None else (), timeout=30
            )
        except grpc.RpcError as error:
            return error.code(), error.details()
    return msgspec.json.decode(reply.result)


def _stop(up: Server, processes: dict[str, dict[str, str]]) -> None:
    """Kill `up` and whatever it started that still runs (each in a session of its own, which `up`'s kill misses)."""
    up.stop()
    for listed in processes.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(listed["pid"]), signal.SIGKILL)


def _until(check: Callable[[], bool], within: float, why: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, why
        time.sleep(0.25)


@pytest.mark.req("SRS-222", "SRS-223", "SRS-224", "SRS-226")
def test_up_starts_the_services_each_owning_its_data_and_changes_apply_from_the_next_request(tmp_path: Path) -> None:
    up = start([sys.executable, "-m", "py_app", "up", "--mode", "microservices", "--replicas", "edge=2"], tmp_path)
    processes: dict[str, dict[str, str]] = {}
    try:
        processes.update(_listed(up))
        assert sorted(processes) == ["auth-1", "edge-1", "edge-2", "users-1"], processes
        http, other = processes["edge-1"]["http"], processes["edge-2"]["http"]
        auth, users = processes["auth-1"]["grpc"], processes["users-1"]["grpc"]
        hint = f"ARCANA_ROLE=users ARCANA_AUTH_TARGET={auth} ARCANA_DATABASE_URL=sqlite+aiosqlite:///{tmp_path}"
        assert hint in up.output()  # `up` says how accounts are made here
        _create_admin(tmp_path, auth)
        admin = _login(http, ADMIN, ADMIN_PASSWORD)
        token = admin["access_token"]

        # Suspension through one edge (users service): refused by the other edge's check (auth service) at once.
        _, suspended_id, suspended = _register(http)
        assert _me(other, suspended) == 200
        assert _call(http, "PUT", f"/users/{suspended_id}/status", token, {"status": "suspended"}).status_code == 200
        assert _me(other, suspended) == 401
        # A role change: the same token may do what the new role may, from the next request.
        _, promoted_id, promoted = _register(http)
        assert _call(other, "GET", "/users/", promoted).status_code == 403
        assert _call(http, "PUT", f"/users/{promoted_id}/role", token, {"role": "admin"}).status_code == 200
        assert _call(other, "GET", "/users/", promoted).status_code == 200
        # A password change ends the account's other sessions, keeps the one that made it.
        changer, changer_id, first = _register(http)
        second = _login(http, changer)["access_token"]
        change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        assert _call(http, "PUT", f"/users/{changer_id}/password", first, change).status_code == 204
        assert (_me(other, second), _me(other, first)) == (401, 200)
        assert _login(other, changer, NEW_PASSWORD)["user"]["id"] == changer_id  # the replica has the new hash
        # A deletion: its token is refused at once.
        _, deleted_id, deleted = _register(http)
        assert _call(http, "DELETE", f"/users/{deleted_id}", token).status_code == 204
        assert _me(other, deleted) == 401

        data = tmp_path / "var"
        users_db, auth_db = data / "arcana_users.db", data / "arcana_auth.db"
        for table in OWNED_BY_AUTH:
            assert _rows(users_db, f"SELECT count(*) FROM {table}") == [(0,)], table
        assert _rows(auth_db, "SELECT count(*) FROM sessions")[0][0] >= 6
        assert _rows(auth_db, "SELECT count(*) FROM audit_events WHERE event = 'privilege_change'") == [(2,)]
        accounts = "SELECT * FROM users ORDER BY id"
        assert _rows(auth_db, accounts) == _rows(users_db, accounts)
        assert len(_rows(users_db, accounts)) == 4  # the admin and the three left
        holders = {
            name: {
                database.name
                for database in (users_db, auth_db)
                for pid in _descendants(int(p["pid"]))
                if any(path.startswith(str(database)) for path in _open_files(pid))
            }
            for name, p in processes.items()
        }
        assert holders == {"users-1": {users_db.name}, "auth-1": {auth_db.name}, "edge-1": set(), "edge-2": set()}

        # Internal gRPC: each service admits its callers' roles only; what it answers the edge has no hash.
        secret = (data / "internal_secret").read_bytes().strip()
        actor = Principal(user_id=admin["user"]["id"], session_id="s", role="admin")
        lookup = (actor, changer_id)
        for target in (auth, users):
            for refused in (
                None,
                ServiceCredential(b"f" * 32, "edge").token(),
                ServiceCredential(secret, "service").token(),
            ):
                assert _raw_call(target, "UserUseCases", "get", lookup, refused)[0] == grpc.StatusCode.UNAUTHENTICATED
        answer = _raw_call(users, "UserUseCases", "get", lookup, ServiceCredential(secret, "edge").token())
        assert answer["id"] == changer_id
        assert answer["password_hash"] == ""

        stops_cleanly(up, processes)
    finally:
        _stop(up, processes)
    assert "Traceback" not in up.output()


@pytest.mark.req("SRS-222")
def test_up_refuses_several_auth_or_users_processes_on_sqlite_with_one_line(tmp_path: Path) -> None:
    for role in ("auth", "users"):
        result = command(tmp_path, "up", "--mode", "microservices", "--replicas", f"{role}=2")
        assert result.returncode == 2
        assert result.stderr.strip() == (
            f"arcana up: --replicas: {role} runs as one process on SQLite (several need ARCANA_DATABASE_URL=mysql://...)"
        )


def _service(tmp_path: Path, role: str, port: int, run: str = "", **env: str) -> Server:
    return start(
        [sys.executable, "-m", "py_app", "serve"],
        tmp_path / (run or role),
        ARCANA_DATA_DIR=str(tmp_path / "var"),
        ARCANA_MODE="microservices",
        ARCANA_ROLE=role,
        ARCANA_GRPC_PORT=str(port),
        **env,
    )


def _serving(target: str) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.mark.req("SRS-225", "SRS-227")
def test_with_the_auth_service_down_a_suspension_is_saved_answered_503_and_applied_by_the_relay_later(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    auth_port, users_port = free_port(), free_port()
    auth_at, users_at = f"127.0.0.1:{auth_port}", f"127.0.0.1:{users_port}"
    for database, role in (("arcana_users.db", "users"), ("arcana_auth.db", "auth")):
        url = f"sqlite+aiosqlite:///{data / database}"
        assert command(tmp_path, "migrate", ARCANA_DATABASE_URL=url).returncode == 0, role
    databases = {role: f"sqlite+aiosqlite:///{data / f'arcana_{role}.db'}" for role in ("auth", "users")}
    auth_env = {"ARCANA_USERS_TARGET": users_at, "ARCANA_DATABASE_URL": databases["auth"]}
    users_env = {"ARCANA_AUTH_TARGET": auth_at, "ARCANA_DATABASE_URL": databases["users"]}
    started: list[Server] = []
    try:
        started.append(_service(tmp_path, "users", users_port, **users_env))
        auth_service = _service(tmp_path, "auth", auth_port, **auth_env)
        started.append(auth_service)
        edge = start(
            [sys.executable, "-m", "py_app", "serve"],
            tmp_path / "edge",
            ARCANA_DATA_DIR=str(data),
            ARCANA_MODE="microservices",
            ARCANA_AUTH_TARGET=auth_at,
            ARCANA_USERS_TARGET=users_at,
        )
        started.append(edge)
        edge.wait_ready()
        _create_admin(tmp_path, auth_at)
        admin = _login(edge.http, ADMIN, ADMIN_PASSWORD)
        _, victim_id, victim = _register(edge.http)
        assert _me(edge.http, victim) == 200

        os.killpg(auth_service.process.pid, signal.SIGKILL)  # our own auth process
        auth_service.process.wait(10)
        # Through the edge: the request cannot even be authenticated; a 503 with a retry hint, never a 500.
        refused = _call(edge.http, "PUT", f"/users/{victim_id}/status", admin["access_token"], {"status": "suspended"})
        assert (refused.status_code, refused.headers.get("retry-after")) == (503, "1"), refused.text
        # Straight to the users service (as an edge whose request was authenticated): saved, answered UNAVAILABLE.
        secret = (data / "internal_secret").read_bytes().strip()
        actor = Principal(user_id=admin["user"]["id"], session_id="s", role="admin")
        edge_token = ServiceCredential(secret, "edge").token()
        answer = _raw_call(users_at, "UserUseCases", "set_status", (actor, victim_id, Status.SUSPENDED), edge_token)
        assert answer[0] == grpc.StatusCode.UNAVAILABLE, answer
        users_db, auth_db = data / "arcana_users.db", data / "arcana_auth.db"
        assert _rows(users_db, f"SELECT status FROM users WHERE id = '{victim_id}'") == [("suspended",)]
        assert _rows(auth_db, f"SELECT status FROM users WHERE id = '{victim_id}'") == [("active",)]
        assert _rows(
            users_db, "SELECT status FROM outbox WHERE topic = 'users.account_changed' AND status != 'done'"
        ) == [("pending",)]

        restarted = _service(tmp_path, "auth", auth_port, "auth-again", **auth_env)
        started.append(restarted)
        _until(lambda: _serving(auth_at), READY_SECONDS, restarted.output()[-3000:])
        # The relay (users service) delivers it: the suspended account's token is refused, nothing was lost.
        _until(lambda: _me(edge.http, victim) == 401, 60, "the relay never applied the suspension")
        assert _rows(auth_db, f"SELECT status FROM users WHERE id = '{victim_id}'") == [("suspended",)]
        assert _rows(users_db, "SELECT status FROM outbox WHERE status != 'done'") == []
        assert _rows(auth_db, "SELECT * FROM users ORDER BY id") == _rows(users_db, "SELECT * FROM users ORDER BY id")

        # The users service down instead: requests are still authenticated (the replica is local); a login,
        # which must be recorded at the owner, is 503 and leaves no live session behind.
        os.killpg(started[0].process.pid, signal.SIGKILL)
        started[0].process.wait(10)
        assert _me(edge.http, admin["access_token"]) == 200
        body = {"username_or_email": ADMIN, "password": ADMIN_PASSWORD}
        login = httpx.post(f"{edge.http}/api/v1/auth/login", json=body, timeout=30)
        assert (login.status_code, login.headers.get("retry-after")) == (503, "1"), login.text
        live = "SELECT count(*) FROM sessions WHERE revoked_at IS NULL"
        assert _rows(auth_db, live) == [(1,)]  # the admin's first session only
        time.sleep(3)  # a readiness refresh: the auth service stays in rotation (degraded), the edge does not
        assert _serving(auth_at)
        assert httpx.get(f"{edge.http}/health/ready", timeout=10).status_code == 503
    finally:
        for server in reversed(started):
            server.stop()
    for server in started:
        assert "Traceback" not in server.output(), server.output()[-3000:]


def _accounts(url: str, database: str) -> list[tuple[Any, ...]]:
    from py_app.infra.db import create_engine

    async def read() -> list[tuple[Any, ...]]:
        engine = create_engine(url.rsplit("/", 1)[0] + f"/{database}")
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(sa.text("SELECT * FROM users ORDER BY id"))
                counts = [
                    (await connection.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
                    for table in OWNED_BY_AUTH
                ]
                return [*(tuple(row) for row in rows), tuple(counts)]
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.mark.mariadb
@pytest.mark.req("SRS-222", "SRS-223", "SRS-224")
def test_on_mariadb_up_makes_each_services_database_and_two_of_each_service_keep_the_replica_exact(
    tmp_path: Path, mariadb_url: str
) -> None:
    from tests.conftest import mariadb_admin

    name = mariadb_url.rsplit("/", 1)[1]
    command_line = [sys.executable, "-m", "py_app", "up", "--mode", "microservices", "--replicas", "auth=2,users=2"]
    up = start(command_line, tmp_path, ARCANA_DATABASE_URL=mariadb_url)
    processes: dict[str, dict[str, str]] = {}
    try:
        processes.update(_listed(up))
        assert sorted(processes) == ["auth-1", "auth-2", "edge-1", "users-1", "users-2"], processes
        http = processes["edge-1"]["http"]
        auths = ",".join(processes[f"auth-{index}"]["grpc"] for index in (1, 2))
        settings = _users_settings(tmp_path / "var", auths) | {"ARCANA_DATABASE_URL": f"{mariadb_url}_users"}
        arguments = ("--username", ADMIN, "--email", "root@example.com", "--password", ADMIN_PASSWORD)
        made = command(tmp_path, "create-admin", *arguments, **settings)
        assert made.returncode == 0, made.stderr
        token = _login(http, ADMIN, ADMIN_PASSWORD)["access_token"]
        victims = [_register(http) for _ in range(4)]  # spread over both processes of each service
        for _, victim_id, _ in victims:
            assert _call(http, "PUT", f"/users/{victim_id}/status", token, {"status": "suspended"}).status_code == 200
        assert [_me(http, victim) for _, _, victim in victims] == [401] * 4
        users, auth = _accounts(mariadb_url, f"{name}_users"), _accounts(mariadb_url, f"{name}_auth")
        assert users[:-1] == auth[:-1]
        assert len(users) == 6  # the admin, four accounts, the counts
        assert users[-1] == (0, 0, 0, 0)  # sessions, refresh and account tokens, audit: none at the owner
        assert auth[-1][0] >= 5
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(STOP_SECONDS * 2) == 0, up.output()[-3000:]
    finally:
        _stop(up, processes)
        for service in ("users", "auth"):
            asyncio.run(mariadb_admin(f"DROP DATABASE IF EXISTS `{name}_{service}`"))
    assert "Traceback" not in up.output()
