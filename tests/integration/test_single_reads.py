"""One-statement reads on MariaDB (infra/db.read_first, SDD-272): prepared on an autocommit connection of a
pool of their own, awaited on asyncmy directly. The same rows as through SQLAlchemy, no ROLLBACK per read,
the latest commit seen, failures mapped as everywhere, and nothing left open."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.mysql.asyncmy import AsyncAdapt_asyncmy_connection
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.auth.repositories import _STATE as SESSION_STATE
from py_app.auth.repositories import SqlSessionStore
from py_app.core.errors import Unavailable
from py_app.infra import db
from py_app.infra.db import metadata, read_first, reading
from py_app.users.repositories import _BY_ID, SqlUserStore
from py_app.users.tables import users
from tests.conftest import MARIADB_ADMIN_URL, mariadb_admin
from tests.ports.conftest import digest, make_session, make_user

pytestmark = [pytest.mark.mariadb, pytest.mark.req("SDD-272")]
NOW = datetime(2026, 12, 3, 9, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
async def engine(mariadb_url: str) -> AsyncIterator[AsyncEngine]:
    built = db.create_engine(mariadb_url, timeout=3.0)
    async with built.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield built
    finally:
        await built.dispose()


async def opened(engine: AsyncEngine, name: str) -> tuple[str, str]:
    user = make_user(name, created_at=NOW, updated_at=NOW)
    await SqlUserStore(engine).add(user)
    session = make_session(user, at=NOW)
    assert await SqlSessionStore(engine).open(session, digest())
    return session.id, user.id


def database_of(engine: AsyncEngine) -> str:
    name = engine.url.database
    assert name
    return name


async def connections_to(name: str) -> int:
    admin = db.create_engine(MARIADB_ADMIN_URL)
    try:
        async with admin.connect() as connection:
            query = sa.text("SELECT COUNT(*) FROM information_schema.processlist WHERE db = :name")
            return int((await connection.execute(query, {"name": name})).scalar_one())
    finally:
        await admin.dispose()


@pytest.fixture
def rollbacks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counted: list[int] = []
    rollback = AsyncAdapt_asyncmy_connection.rollback

    def counting(self: AsyncAdapt_asyncmy_connection) -> None:
        counted.append(1)
        rollback(self)

    monkeypatch.setattr(AsyncAdapt_asyncmy_connection, "rollback", counting)
    return counted


async def test_the_session_read_returns_what_sqlalchemy_returns(engine: AsyncEngine) -> None:
    session_id, user_id = await opened(engine, "single")
    parameters = {"session_id": session_id, "user_id": user_id}

    fast = await read_first(engine, SESSION_STATE, parameters)
    async with reading(engine) as connection:
        slow = (await connection.execute(SESSION_STATE, parameters)).mappings().first()

    assert slow is not None
    assert fast == dict(slow)
    assert fast["created_at"] == NOW
    assert fast["created_at"].tzinfo is UTC
    assert fast["account_is_verified"] is False  # MariaDB's tinyint, converted as SQLAlchemy converts it
    assert fast["account_last_login_at"] is None
    assert await read_first(engine, SESSION_STATE, {"session_id": "none", "user_id": user_id}) is None
    # A statement Prepared does not take (an expanding IN list) reads through SQLAlchemy, the same rows.
    listed = sa.select(users.c.username).where(users.c.id.in_(sa.bindparam("ids", expanding=True)))
    assert await read_first(engine, listed, {"ids": [user_id]}) == {"username": "single"}


async def test_a_read_sends_no_rollback_and_sees_the_latest_commit(engine: AsyncEngine, rollbacks: list[int]) -> None:
    _, user_id = await opened(engine, "latest")
    before = await read_first(engine, _BY_ID, {"user_id": user_id})
    rollbacks.clear()
    async with engine.begin() as connection:
        await connection.execute(users.update().where(users.c.id == user_id).values(first_name="Renamed"))
    rollbacks.clear()

    after = [await read_first(engine, _BY_ID, {"user_id": user_id}) for _ in range(5)]

    assert before is not None
    assert before["first_name"] == ""
    assert [row["first_name"] if row else None for row in after] == ["Renamed"] * 5
    assert rollbacks == []  # reading() costs one ROLLBACK (a round trip) per read; these none
    async with reading(engine) as connection:
        await connection.execute(_BY_ID, {"user_id": user_id})
    assert rollbacks == [1]


async def test_more_reads_at_once_than_the_pool_holds_wait_and_leave_it_clean(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    _, user_id = await opened(engine, "crowd")
    caplog.set_level(logging.WARNING)

    rows = await asyncio.gather(*(read_first(engine, _BY_ID, {"user_id": user_id}) for _ in range(40)))

    assert [row["username"] if row else None for row in rows] == ["crowd"] * 40
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert await connections_to(database_of(engine)) <= db.MYSQL_POOL + db.MYSQL_READ_POOL


async def test_a_connection_the_server_killed_is_a_retryable_503_and_the_next_read_works(
    engine: AsyncEngine,
) -> None:
    _, user_id = await opened(engine, "killed")
    assert await read_first(engine, _BY_ID, {"user_id": user_id}) is not None
    admin = db.create_engine(MARIADB_ADMIN_URL)
    try:
        async with admin.connect() as connection:
            query = sa.text("SELECT id FROM information_schema.processlist WHERE db = :name")
            ids = (await connection.execute(query, {"name": database_of(engine)})).scalars().all()
        for connection_id in ids:
            await mariadb_admin(f"KILL CONNECTION {int(connection_id)}")
    finally:
        await admin.dispose()
    await asyncio.sleep(0.2)  # gone, and still within the idle time a checkout does not ping after

    with pytest.raises(Unavailable):
        await read_first(engine, _BY_ID, {"user_id": user_id})
    row = await read_first(engine, _BY_ID, {"user_id": user_id})

    assert row is not None
    assert row["username"] == "killed"


async def test_disposing_the_engine_closes_its_single_read_connections(mariadb_url: str) -> None:
    engine = db.create_engine(mariadb_url, timeout=3.0)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await asyncio.gather(*(read_first(engine, _BY_ID, {"user_id": "nobody"}) for _ in range(8)))
    name = database_of(engine)
    assert await connections_to(name) > 0

    await engine.dispose()

    for _ in range(40):
        if await connections_to(name) == 0:
            break
        await asyncio.sleep(0.05)
    assert await connections_to(name) == 0


async def test_the_pool_metrics_count_the_single_read_pool_too(engine: AsyncEngine) -> None:
    from py_app.infra.metrics import observe_pool
    from tests.fakes import RecordingMetrics

    _, user_id = await opened(engine, "counted")
    metrics = RecordingMetrics()
    deltas: list[int] = []
    metrics.pool_checked_out = deltas.append  # type: ignore[method-assign,assignment]
    observe_pool(engine, metrics)

    await asyncio.gather(*(read_first(engine, _BY_ID, {"user_id": user_id}) for _ in range(5)))

    assert metrics.counts["pool_size",] == db.MYSQL_POOL + db.MYSQL_READ_POOL
    assert sorted(deltas) == [-1] * 5 + [1] * 5  # each read's connection, handed out and given back


async def test_a_database_that_refuses_the_connection_is_an_error_not_a_retry(mariadb_url: str) -> None:
    from py_app.core.errors import Internal

    missing = db.create_engine(mariadb_url.rsplit("/", 1)[0] + "/arcana_no_such_database", timeout=3.0)
    try:
        with pytest.raises(Internal):  # unknown database (1049): trying again cannot help, as through reading()
            await read_first(missing, _BY_ID, {"user_id": "nobody"})
    finally:
        await missing.dispose()
