"""The port-contract suite: every store port runs the same tests against the in-memory fake, SQLite,
MariaDB and the gRPC clients of the layered mode's repository tier (``remote``: the client adapters over a
real grpc.aio server serving the SQL stores on SQLite), which is what proves the fakes faithful and the
clients equivalent.

One database per backend for the whole session (migrated once); tests use unique names, so they never
see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from py_app.audit.ports import AuditStore
from py_app.audit.repositories import SqlAuditStore
from py_app.auth.models import Session
from py_app.auth.ports import AccountTokenStore, SessionStore
from py_app.auth.repositories import SqlAccountTokenStore, SqlSessionStore
from py_app.infra import migrations, remote
from py_app.infra.db import create_engine
from py_app.infra.outbox import OutboxStore, SqlOutbox
from py_app.infra.remote_stores import RemoteAccountTokenStore, RemoteAuditStore, RemoteSessionStore, RemoteUserStore
from py_app.infra.service_auth import CALLERS, ServiceCredential, ServiceCredentialInterceptor
from py_app.users.models import Role, Status, User, new_user_id
from py_app.users.ports import UserStore
from py_app.users.repositories import SqlUserStore
from tests.conftest import MARIADB_ADMIN_URL, mariadb_admin, unavailable
from tests.fakes import InMemoryAccountTokens, InMemoryAudit, stores

BACKENDS = [
    "fake",
    "sqlite",
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    pytest.param("remote", marks=pytest.mark.req("SRS-191")),
]
T0 = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


@dataclass(frozen=True)
class Stores:
    backend: str
    users: UserStore
    sessions: SessionStore
    tokens: AccountTokenStore
    audit: AuditStore


class Databases:
    """One migrated database per SQL backend, made on first use and dropped when the session ends."""

    def __init__(self, folder: str) -> None:
        self._folder = folder
        self._urls: dict[str, str] = {}
        self._made: list[str] = []

    async def url(self, backend: str) -> str:
        if backend not in self._urls:
            self._urls[backend] = await (self._sqlite() if backend == "sqlite" else self._mariadb_database())
        return self._urls[backend]

    async def _sqlite(self) -> str:
        url = f"sqlite+aiosqlite:///{self._folder}/ports.db"
        await asyncio.to_thread(migrations.upgrade, url)
        return url

    async def fresh(self, backend: str) -> str:
        """A database of its own (for tests about the whole table, like "the last admin")."""
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{self._folder}/{uuid.uuid4().hex[:8]}.db"
            await asyncio.to_thread(migrations.upgrade, url)
            return url
        return await self._mariadb_database()

    async def _mariadb_database(self) -> str:
        name = f"arcana_t_{uuid.uuid4().hex[:12]}"
        try:
            await mariadb_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        except Exception as exc:
            unavailable("MariaDB at 127.0.0.1:3306", exc)
            raise
        self._made.append(name)
        url = MARIADB_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        await asyncio.to_thread(migrations.upgrade, url)
        return url

    def drop(self) -> None:
        for name in self._made:
            asyncio.run(mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    made = Databases(str(tmp_path_factory.mktemp("ports")))
    yield made
    made.drop()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, databases: Databases) -> AsyncIterator[Stores]:
    if request.param == "fake":
        users, sessions = stores()
        yield Stores("fake", users, sessions, InMemoryAccountTokens(users.db), InMemoryAudit(users.db))
        return
    async with _sql_or_remote(request.param, await databases.url(_database_of(request.param))) as made:
        yield made


@pytest.fixture(params=BACKENDS)
async def fresh_store(request: pytest.FixtureRequest, databases: Databases) -> AsyncIterator[Stores]:
    """Like ``store``, but over an empty database of its own."""
    if request.param == "fake":
        users, sessions = stores()
        yield Stores("fake", users, sessions, InMemoryAccountTokens(users.db), InMemoryAudit(users.db))
        return
    async with _sql_or_remote(request.param, await databases.fresh(_database_of(request.param))) as made:
        yield made


def _database_of(backend: str) -> str:
    return "sqlite" if backend == "remote" else backend


@contextlib.asynccontextmanager
async def _sql_or_remote(backend: str, url: str) -> AsyncIterator[Stores]:
    engine = create_engine(url)
    sql = Stores(
        backend, SqlUserStore(engine), SqlSessionStore(engine), SqlAccountTokenStore(engine), SqlAuditStore(engine)
    )
    try:
        if backend != "remote":
            yield sql
            return
        ports = [
            remote.served(UserStore, sql.users),
            remote.served(SessionStore, sql.sessions),
            remote.served(AccountTokenStore, sql.tokens),
            remote.served(AuditStore, sql.audit),
            remote.served(OutboxStore, SqlOutbox(engine)),
        ]
        async with repository_tier(ports) as target:
            yield Stores(
                backend,
                RemoteUserStore(target),
                RemoteSessionStore(target),
                RemoteAccountTokenStore(target),
                RemoteAuditStore(target),
            )
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def repository_tier(ports: list[tuple[str, remote.Served]]) -> AsyncIterator[remote.Target]:
    """A real grpc.aio server serving ``ports`` as the repository tier does, and one channel to it."""
    secret = secrets.token_bytes(32)
    server = grpc.aio.server(interceptors=[ServiceCredentialInterceptor(secret, CALLERS["Repository"])])
    remote.add_servicer(server, "Repository", dict(ports))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    credential = ServiceCredential(secret, "service")
    target = remote.Target(f"127.0.0.1:{port}", "Repository", timeout=10, credential=credential)
    try:
        yield target
    finally:
        await target.close()
        await server.stop(None)


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def make_user(username: str | None = None, **fields: object) -> User:
    name = username or unique()
    values: dict[str, object] = {
        "id": new_user_id(),
        "username": name,
        "email": f"{name.lower()}@example.com",
        "password_hash": "$argon2id$stored",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return User(**values)  # type: ignore[arg-type]


def make_session(user: User, *, at: datetime = T0, lifetime: float = 3600) -> Session:
    return Session(
        id=str(uuid.uuid4()),
        user_id=user.id,
        created_at=at,
        last_used_at=at,
        expires_at=at + timedelta(seconds=lifetime),
        user_agent="pytest",
        ip="127.0.0.1",
    )


def digest() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex characters, like a SHA-256 digest


__all__ = ["T0", "Role", "Status", "Stores", "digest", "make_session", "make_user", "unique"]
