"""What a database failure means to a caller, on SQLite and MariaDB: only connection, timeout and lock errors
are "try again" (Unavailable); anything else is an internal error, logged without the statement's values."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncmy.errors
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.core.errors import Internal, Unavailable
from py_app.infra.db import Writer, create_engine, reading, transaction

TIMEOUT = 1.0
BOUND = TIMEOUT + 1.5  # the timeout and room for a loaded machine


@dataclass(frozen=True)
class Scratch:
    engine: AsyncEngine
    table: str
    url: str

    async def run(self, connection: Writer, statement: str) -> None:
        await connection.execute(sa.text(statement.format(table=self.table)))


@pytest.fixture
async def scratch(database_url: str) -> AsyncIterator[Scratch]:
    """An engine with a short database timeout, and a table of its own holding one row."""
    engine = create_engine(database_url, timeout=TIMEOUT)
    table = f"scratch_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v VARCHAR(3), CHECK (v <> 'bad'))")
        )
        await connection.execute(sa.text(f"INSERT INTO {table} (id, v) VALUES (1, 'a')"))
    try:
        yield Scratch(engine, table, database_url)
    finally:
        async with engine.begin() as connection:
            await connection.execute(sa.text(f"DROP TABLE {table}"))
        await engine.dispose()


@contextlib.asynccontextmanager
async def row_locked(scratch: Scratch) -> AsyncIterator[None]:
    """Another client holds the scratch row (MariaDB: a row lock; SQLite: the database's write lock)."""
    if scratch.url.startswith("sqlite"):
        path = scratch.url.split("///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    other = create_engine(scratch.url, timeout=30)
    try:
        async with other.connect() as connection, connection.begin():
            await scratch.run(connection, "SELECT v FROM {table} WHERE id = 1 FOR UPDATE")
            yield
    finally:
        await other.dispose()


@pytest.mark.req("SRS-161")
async def test_a_lock_held_by_another_client_is_unavailable_within_the_timeout(scratch: Scratch) -> None:
    async with row_locked(scratch):
        began = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            async with transaction(scratch.engine) as connection:
                await scratch.run(connection, "UPDATE {table} SET v = 'b' WHERE id = 1")
        elapsed = time.monotonic() - began
    assert caught.value.retry_after is not None
    assert elapsed <= BOUND, elapsed
    async with transaction(scratch.engine) as connection:  # and it works again at once
        await scratch.run(connection, "UPDATE {table} SET v = 'c' WHERE id = 1")


@pytest.mark.req("SRS-161")
async def test_no_pooled_connection_free_is_unavailable_within_the_timeout(scratch: Scratch) -> None:
    engine = scratch.engine
    async with contextlib.AsyncExitStack() as held:

        async def take_them_all() -> None:  # every connection the pool will give, then wait for one more
            for _ in range(100):
                await held.enter_async_context(engine.connect())

        with pytest.raises(sa.exc.TimeoutError):
            await take_them_all()
        # A write needs a pooled connection on MariaDB, and on SQLite when it must wait for another client's
        # lock (with the lock free it runs on the loop's own connection, infra/db.LoopWrite).
        async with row_locked(scratch) if scratch.url.startswith("sqlite") else contextlib.nullcontext():
            began = time.monotonic()
            with pytest.raises(Unavailable):
                async with transaction(engine) as connection:
                    await connection.execute(sa.text("SELECT 1"))
            assert time.monotonic() - began <= BOUND
        if scratch.url.startswith("mysql"):
            with pytest.raises(Unavailable):
                async with reading(engine) as reader:
                    await reader.execute(sa.text("SELECT 1"))


@pytest.mark.req("SRS-162", "SDD-162")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET v = 'bad' WHERE id = 1",  # a CHECK constraint (MariaDB reports it as OperationalError)
        "INSERT INTO {table} (id, v) VALUES (1, 'x')",  # an integrity error the store did not expect
        "SELECT * FROM missing_{table}",  # a schema that does not match the code
    ],
    ids=["check-constraint", "duplicate-key", "missing-table"],
)
async def test_other_database_errors_are_internal_not_a_retry(
    scratch: Scratch, statement: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(Internal), caplog.at_level(logging.WARNING, logger="arcana.db"):
        async with transaction(scratch.engine) as connection:
            await scratch.run(connection, statement)
    (record,) = [record for record in caplog.records if record.name == "arcana.db"]
    assert record.levelname == "ERROR"
    assert record.getMessage() == "database error"


@pytest.mark.req("SRS-162", "SDD-162")
@pytest.mark.mariadb
async def test_a_data_error_is_internal_and_its_value_never_reaches_the_log(
    mariadb_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    made = create_engine(mariadb_url, timeout=TIMEOUT)
    try:
        async with made.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE narrow (v VARCHAR(3), w VARCHAR(20) CHARACTER SET latin1)"))
        for column, value in (("v", "too long secret"), ("w", "\U0001f600 secret")):
            caplog.clear()
            with pytest.raises(Internal), caplog.at_level(logging.DEBUG):
                async with transaction(made) as connection:
                    await connection.execute(
                        sa.text(f"INSERT INTO narrow ({column}) VALUES (:value)"), {"value": value}
                    )
            logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
            assert "DataError" in logged
            assert "secret" not in logged
            assert "\\xF0" not in logged
    finally:
        await made.dispose()


@pytest.mark.req("SDD-183")
def test_the_pools_failed_reset_of_a_dropped_connection_is_one_warning_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What SQLAlchemy's pool logs when its rollback on return finds the link dead (seen in tests/faults)."""
    create_engine("mysql+asyncmy://nobody@127.0.0.1:9/none")  # installs the filter on the pool's logger (no connection)
    pool_logger = logging.getLogger("sqlalchemy.pool.impl.AsyncAdaptedQueuePool")
    lost = asyncmy.errors.OperationalError(2013, "Lost connection to MySQL server during query (read timeout)")
    with caplog.at_level(logging.WARNING, logger=pool_logger.name):
        try:
            raise lost
        except asyncmy.errors.OperationalError:
            pool_logger.error("Exception during reset or similar", exc_info=True)
        try:
            raise asyncio.CancelledError  # the deadline cancelled the rollback itself (seen once in CI)
        except asyncio.CancelledError:
            pool_logger.error("Exception during reset or similar", exc_info=True)
        try:  # asyncmy's own word for the same cancellation (seen in CI under the slow-database test)
            raise asyncmy.errors.InterfaceError(0, "Cancelled during execution")
        except asyncmy.errors.InterfaceError:
            pool_logger.error("Exception during reset or similar", exc_info=True)
        try:
            raise ValueError("a bug, not an outage")
        except ValueError:
            pool_logger.error("Exception during reset or similar", exc_info=True)
    dropped, cancelled, interrupted, bug = caplog.records
    for record in (dropped, cancelled, interrupted):
        assert (record.levelname, record.getMessage(), record.exc_info) == (
            "WARNING",
            "database connection dropped on return to the pool",
            None,
        )
    assert (dropped.__dict__["error"], dropped.__dict__["number"]) == ("OperationalError", 2013)
    assert (cancelled.__dict__["error"], cancelled.__dict__["number"]) == ("CancelledError", None)
    assert (interrupted.__dict__["error"], interrupted.__dict__["number"]) == ("InterfaceError", 0)
    assert (bug.levelname, bug.exc_info is not None) == ("ERROR", True)  # anything else stays an error
