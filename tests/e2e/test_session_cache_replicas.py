"""Two replicas (two server processes) on one MariaDB database, sharing one Redis session cache (the test's own
prefix): whatever one acknowledges (a logout, revoke-all, suspension, role change, password change, delete),
the other refuses on its very next request, over REST and gRPC, with no pause in between. The user records are
shared there too: an update, suspension, role change or delete acknowledged by one replica is what the other's
next read shows (SRS-260). And one server with two workers on the same topology: a logout acknowledged by one
worker is refused by both.

Each scenario first makes the other replica serve the session from the shared cache (its hit counter moves),
so a refusal is the cache's invalidation at work and not a cache that was never used. The pair is started once
for the module (starting it is most of each test's time): every scenario registers an account of its own, and
only the first admin's login is shared.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, users_pb2, users_pb2_grpc
from tests.conftest import REDIS_TEST_URL, free_port
from tests.e2e.support import Server, command, migrate, start
from tests.e2e.test_session_cache_workers import first_name, get_user, in_every_process

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.redis, pytest.mark.timeout(300)]
PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse entirely 42"
V1 = "/api/v1"


class Replica:
    def __init__(self, server: Server, metrics: str) -> None:
        self.server = server
        self.metrics = metrics

    def hits(self, cache: str = "session") -> float:
        text = httpx.get(self.metrics, timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "arcana_cache_requests_total" and sample.labels == {
                    "cache": cache,
                    "result": "hit",
                }:
                    return float(sample.value)
        return 0.0

    def rest(self, token: str, user_id: str) -> tuple[int, int]:
        with httpx.Client(
            base_url=self.server.http + V1, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as c:
            return c.get(f"/users/{user_id}").status_code, c.get("/auth/me").status_code

    def grpc(self, token: str, user_id: str) -> tuple[str, str]:
        async def calls() -> tuple[str, str]:
            bearer = (("authorization", f"Bearer {token}"),)
            codes = []
            async with grpc.aio.insecure_channel(self.server.grpc) as channel:
                for call in (
                    users_pb2_grpc.UserServiceStub(channel).GetUser(
                        users_pb2.GetUserRequest(id=user_id), metadata=bearer, timeout=10
                    ),
                    auth_pb2_grpc.AuthServiceStub(channel).Me(auth_pb2.MeRequest(), metadata=bearer, timeout=10),
                ):
                    try:
                        await call
                        codes.append("OK")
                    except grpc.aio.AioRpcError as error:
                        codes.append(error.code().name)
            return codes[0], codes[1]

        return asyncio.run(calls())

    def admin_list(self, token: str) -> tuple[int, str]:
        """An admin-only call over both protocols (the role is the session's, read through the cache)."""
        status = httpx.get(f"{self.server.http}{V1}/users", headers={"Authorization": f"Bearer {token}"}, timeout=10)

        async def call() -> str:
            async with grpc.aio.insecure_channel(self.server.grpc) as channel:
                try:
                    await users_pb2_grpc.UserServiceStub(channel).ListUsers(
                        users_pb2.ListUsersRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10
                    )
                except grpc.aio.AioRpcError as error:
                    return str(error.code().name)
            return "OK"

        return status.status_code, asyncio.run(call())

    def login(self, username: str, password: str = PASSWORD) -> tuple[str, str]:
        body = {"username_or_email": username, "password": password}
        response = httpx.post(f"{self.server.http}{V1}/auth/login", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"]), str(response.json()["user"]["id"])

    def register(self) -> tuple[str, str, str]:
        name = f"u{uuid.uuid4().hex[:10]}"
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        response = httpx.post(f"{self.server.http}{V1}/auth/register", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return (*self.login(name), name)

    def call(self, method: str, path: str, token: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, f"{self.server.http}{V1}{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, module_mariadb_url: str) -> Iterator[tuple[Replica, Replica]]:
    """One pair for the module: every test works on an account of its own, so none sees another's effects."""
    tmp_path = tmp_path_factory.mktemp("replicas")
    shared = {
        "ARCANA_DATABASE_URL": module_mariadb_url,
        "ARCANA_REDIS_URL": REDIS_TEST_URL,
        "ARCANA_REDIS_PREFIX": f"arcana-test:{uuid.uuid4().hex[:12]}:",
        "ARCANA_JWT_SECRET": "replicas-share-this-secret-0123456789abcdef",
        "ARCANA_RATE_LIMITS": "false",
        "ARCANA_SESSION_CACHE_TTL": "60",  # long: nothing here may depend on an entry expiring
    }
    migrate(tmp_path / "a", **shared)
    made = command(
        tmp_path / "a",
        "create-admin",
        "--username",
        "root",
        "--email",
        "root@example.com",
        ARCANA_ADMIN_PASSWORD=PASSWORD,
        **shared,
    )
    assert made.returncode == 0, made.stderr
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            server = start(
                [sys.executable, "-m", "py_app", "serve"], tmp_path / name, ARCANA_METRICS_PORT=str(port), **shared
            )
            started.append(Replica(server, f"http://127.0.0.1:{port}/metrics"))
        for replica in started:
            replica.server.wait_ready()
        yield started[0], started[1]
    finally:
        for replica in started:
            replica.server.stop()
    asyncio.run(clean(shared["ARCANA_REDIS_PREFIX"]))


async def clean(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_TEST_URL)
    try:
        async for key in client.scan_iter(f"{prefix}*"):
            await client.delete(key)
    finally:
        await client.aclose()


def cached_on(replica: Replica, token: str, user_id: str) -> None:
    """Served from the shared cache by ``replica`` over both protocols (its hit counter moves)."""
    before = replica.hits()
    assert replica.rest(token, user_id) == (200, 200)
    assert replica.grpc(token, user_id) == ("OK", "OK")
    assert replica.hits() >= before + 3  # at most the first of the four lookups missed


Action = Callable[[Replica, str, str, str], None]


def logout(a: Replica, token: str, user_id: str, admin: str) -> None:
    assert a.call("POST", "/auth/logout", token).status_code == 204


def revoke_all(a: Replica, token: str, user_id: str, admin: str) -> None:
    response = a.call("POST", "/auth/sessions/revoke-all", token)
    assert response.status_code == 200, response.text


def suspend(a: Replica, token: str, user_id: str, admin: str) -> None:
    response = a.call("PUT", f"/users/{user_id}/status", admin, json={"status": "suspended"})
    assert response.status_code == 200, response.text


def delete(a: Replica, token: str, user_id: str, admin: str) -> None:
    response = a.call("DELETE", f"/users/{user_id}", admin)
    assert response.status_code == 204, response.text


@pytest.mark.req("SRS-185")
@pytest.mark.parametrize("action", [logout, revoke_all, suspend, delete], ids=lambda f: f.__name__)
def test_what_one_replica_acknowledged_ends_the_session_on_the_other_at_once(
    replicas: tuple[Replica, Replica], action: Action
) -> None:
    a, b = replicas
    admin, _ = a.login("root")
    token, user_id, _ = a.register()
    cached_on(b, token, user_id)
    cached_on(a, token, user_id)
    action(a, token, user_id, admin)
    assert b.rest(token, user_id) == (401, 401)
    assert b.grpc(token, user_id) == ("UNAUTHENTICATED", "UNAUTHENTICATED")
    assert a.rest(token, user_id) == (401, 401)


@pytest.mark.req("SRS-185")
def test_a_password_change_on_one_replica_ends_the_other_sessions_on_the_other(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    keeper, user_id, name = a.register()
    other, _ = a.login(name)
    cached_on(b, other, user_id)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert a.call("PUT", f"/users/{user_id}/password", keeper, json=body).status_code == 204
    assert b.rest(other, user_id) == (401, 401)
    assert b.grpc(other, user_id) == ("UNAUTHENTICATED", "UNAUTHENTICATED")
    assert b.rest(keeper, user_id) == (200, 200)  # the session that changed it stays


@pytest.mark.req("SRS-185")
def test_a_demotion_on_one_replica_takes_the_role_away_on_the_other_at_once(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    admin, _ = a.login("root")
    token, user_id, _ = a.register()
    assert a.call("PUT", f"/users/{user_id}/role", admin, json={"role": "admin"}).status_code == 200
    cached_on(b, token, user_id)
    assert b.admin_list(token) == (200, "OK")
    assert a.call("PUT", f"/users/{user_id}/role", admin, json={"role": "user"}).status_code == 200
    assert b.admin_list(token) == (403, "PERMISSION_DENIED")
    assert b.rest(token, user_id) == (200, 200)  # still signed in, as a user


def read_user(replica: Replica, token: str, user_id: str) -> tuple[dict[str, object] | int, dict[str, object] | str]:
    """``GET /users/{id}`` and ``UserService/GetUser`` on ``replica``: the record's fields, or the refusal."""
    response = replica.call("GET", f"/users/{user_id}", token)
    rest: dict[str, object] | int = response.json() if response.status_code == 200 else response.status_code

    async def call() -> dict[str, object] | str:
        async with grpc.aio.insecure_channel(replica.server.grpc) as channel:
            try:
                user = await users_pb2_grpc.UserServiceStub(channel).GetUser(
                    users_pb2.GetUserRequest(id=user_id), metadata=(("authorization", f"Bearer {token}"),), timeout=10
                )
            except grpc.aio.AioRpcError as error:
                return str(error.code().name)
            return {"first_name": user.first_name, "role": user.role, "status": user.status}

    return rest, asyncio.run(call())


def rename(a: Replica, token: str, user_id: str, admin: str) -> None:
    response = a.call("PATCH", f"/users/{user_id}", admin, json={"first_name": "Renamed"})
    assert response.status_code == 200, response.text


def promote(a: Replica, token: str, user_id: str, admin: str) -> None:
    response = a.call("PUT", f"/users/{user_id}/role", admin, json={"role": "admin"})
    assert response.status_code == 200, response.text


SEEN_AFTER: dict[str, tuple[str, object]] = {
    "rename": ("first_name", "Renamed"),
    "suspend": ("status", "suspended"),
    "promote": ("role", "admin"),
}


def cached_record_on(b: Replica, admin: str, user_id: str) -> None:
    """``user_id``'s record is served to ``admin`` from Redis by ``b`` over both protocols (its hit counter moves)."""
    before = b.hits("user")
    first = read_user(b, admin, user_id)
    assert isinstance(first[0], dict)
    assert isinstance(first[1], dict)
    assert read_user(b, admin, user_id) == first
    assert b.hits("user") >= before + 2  # at most the first of the four reads missed


@pytest.mark.req("SRS-260")
@pytest.mark.parametrize("action", [rename, suspend, promote], ids=lambda f: f.__name__)
def test_a_user_record_changed_through_one_replica_is_what_the_other_reads_next(
    replicas: tuple[Replica, Replica], action: Action
) -> None:
    a, b = replicas
    admin, _ = a.login("root")
    token, user_id, _ = a.register()
    cached_record_on(b, admin, user_id)
    action(a, token, user_id, admin)
    field, value = SEEN_AFTER[action.__name__]
    rest, rpc = read_user(b, admin, user_id)
    assert isinstance(rest, dict)
    assert isinstance(rpc, dict)
    assert (rest[field], rpc[field]) == (value, value)


@pytest.mark.req("SRS-260")
def test_a_user_deleted_through_one_replica_is_not_found_by_the_other_at_once(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    admin, _ = a.login("root")
    token, user_id, _ = a.register()
    cached_record_on(b, admin, user_id)
    delete(a, token, user_id, admin)
    assert read_user(b, admin, user_id) == (404, "NOT_FOUND")


@pytest.fixture
def two_workers(tmp_path: Path, mariadb_url: str) -> Iterator[Server]:
    shared = {
        "ARCANA_DATABASE_URL": mariadb_url,
        "ARCANA_REDIS_URL": REDIS_TEST_URL,
        "ARCANA_REDIS_PREFIX": f"arcana-test:{uuid.uuid4().hex[:12]}:",
        "ARCANA_RATE_LIMITS": "false",
        "ARCANA_SESSION_CACHE_TTL": "60",
    }
    migrate(tmp_path, **shared)
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, ARCANA_WORKERS="2", **shared)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        asyncio.run(clean(shared["ARCANA_REDIS_PREFIX"]))


@pytest.mark.req("SRS-185")
def test_with_two_workers_a_logout_acknowledged_by_one_is_refused_by_every_worker_at_once(two_workers: Server) -> None:
    replica = Replica(two_workers, "")
    token, user_id, _ = replica.register()
    assert set(asyncio.run(in_every_process(two_workers, get_user(token, user_id))).values()) == {"OK"}  # cached
    assert replica.call("POST", "/auth/logout", token).status_code == 204
    refused = asyncio.run(in_every_process(two_workers, get_user(token, user_id)))
    assert set(refused.values()) == {"UNAUTHENTICATED"}
    assert replica.rest(token, user_id) == (401, 401)


@pytest.mark.req("SRS-260")
def test_with_two_workers_a_profile_change_acknowledged_by_one_is_read_by_every_worker_at_once(
    two_workers: Server,
) -> None:
    replica = Replica(two_workers, "")
    token, user_id, _ = replica.register()
    assert set(asyncio.run(in_every_process(two_workers, first_name(token, user_id))).values()) == {"/"}  # cached
    response = replica.call("PATCH", f"/users/{user_id}", token, json={"first_name": "Renamed"})
    assert response.status_code == 200, response.text
    after = asyncio.run(in_every_process(two_workers, first_name(token, user_id)))
    assert set(after.values()) == {"Renamed/Renamed"}
