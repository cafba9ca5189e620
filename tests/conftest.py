"""Shared fixtures: isolated settings, real MariaDB and Redis with unique names, free ports."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from py_app.config import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"
MARIADB_ADMIN_URL = os.environ.get("ARCANA_TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1:3306/test")
REDIS_TEST_URL = os.environ.get("ARCANA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(what: str, error: BaseException) -> None:
    """A missing service fails the test in CI (CI=true) and skips it on a developer's machine."""
    message = f"{what} is not reachable ({type(error).__name__}: {error}); see DEVELOPERS.md to start it"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


# Ports for the servers tests start: each xdist worker (gw0, gw1, ...) counts through its own block below the
# ports `up` picks (py_app.entrypoints.up.FREE_PORTS) and below the kernel's ephemeral range, so neither
# another worker's server nor any outgoing connection can be given a port between the check and the bind.
# The count starts at a random place in the block, for two checkouts testing on one machine at once.
_PORT_BLOCK = 1250
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % 8
_next_ports = itertools.cycle(range(10000 + _WORKER * _PORT_BLOCK, 10000 + (_WORKER + 1) * _PORT_BLOCK))
for _ in range(random.randrange(_PORT_BLOCK)):
    next(_next_ports)


def free_port() -> int:
    for _ in range(_PORT_BLOCK):
        candidate = next(_next_ports)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise RuntimeError(f"no free port in this worker's block of {_PORT_BLOCK}")


# The suite runs on pytest-xdist workers (`make test`, `--dist loadgroup`). A group runs on one worker: each
# module is one, so a module-scoped server starts once; tests/contract and tests/ports are one each, as their
# session-scoped servers and migrated databases serve every module there, and tests/security too, for its
# package-scoped servers.
_SHARED_SESSIONS = ("tests/contract/", "tests/ports/", "tests/security/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        group = next((shared for shared in _SHARED_SESSIONS if path.startswith(shared)), path)
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _clean_arcana_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own ARCANA_ variables."""
    for name in list(os.environ):
        if name.startswith("ARCANA_") and not name.startswith("ARCANA_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'arcana.db'}"


async def mariadb_admin(statement: str) -> None:
    """Run one statement on the MariaDB server as the admin URL's user."""
    import sqlalchemy as sa

    from py_app.infra.db import create_engine

    engine = create_engine(MARIADB_ADMIN_URL)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await engine.dispose()


@contextmanager
def fresh_mariadb_database() -> Iterator[str]:
    """A fresh, empty MariaDB database with a unique name (its URL), dropped afterwards."""
    name = f"arcana_t_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(mariadb_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:
        unavailable("MariaDB at 127.0.0.1:3306", exc)
        raise
    try:
        yield MARIADB_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database with a unique name, dropped afterwards."""
    with fresh_mariadb_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_mariadb_url() -> Iterator[str]:
    """One fresh MariaDB database for a whole module (for servers the module's tests share), dropped afterwards."""
    with fresh_mariadb_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite and on MariaDB."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'arcana.db'}"
    return str(request.getfixturevalue("mariadb_url"))


@pytest.fixture
async def redis_url() -> str:
    """The real Redis; the key prefix for this test is in ``redis_prefix``."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        await client.aclose()
        unavailable("Redis at 127.0.0.1:6379", exc)
    await client.aclose()
    return REDIS_TEST_URL


@pytest.fixture
def redis_prefix() -> str:
    return f"arcana-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def make_settings(data_dir: Path, sqlite_url: str) -> Callable[..., Settings]:
    """Settings for a test: SQLite in the test's own folder, free ports, development mode."""

    def factory(**overrides: object) -> Settings:
        http_port, grpc_port = free_port(), free_port()  # two in a row are never the same: free_port counts
        values: dict[str, object] = {
            "data_dir": str(data_dir),
            "database_url": sqlite_url,
            "http_port": http_port,
            "grpc_port": grpc_port,
            "shutdown_grace": 2.0,
            "rate_limits": False,  # suites that are not about limits register many accounts from one address
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return factory
