"""Database engine, shared metadata and column types for SQLite (aiosqlite) and MySQL/MariaDB (asyncmy)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from py_app.core.errors import Unavailable

logger = logging.getLogger("arcana.db")
WRITE = "arcana_write"  # execution option: this connection's transaction will write

# Stable constraint names so Alembic migrations can refer to them on every backend.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (MySQL DATETIME has no zone)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def CaseInsensitiveString(length: int) -> sa.types.TypeEngine[str]:  # noqa: N802 - a type factory
    """A string compared case-insensitively on both backends (MariaDB's utf8mb4 collation already is)."""
    return sa.String(length).with_variant(sa.String(length, collation="NOCASE"), "sqlite")


def normalize_url(raw: str) -> URL:
    """Pick the async driver for the URL's backend: aiosqlite for SQLite, asyncmy for MySQL/MariaDB."""
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if backend in ("mysql", "mariadb"):
        url = url.set(drivername="mysql+asyncmy")
        return url.update_query_dict({"charset": "utf8mb4"}) if "charset" not in url.query else url
    raise ValueError(f"unsupported database backend {backend!r}")


def create_engine(raw_url: str, *, echo: bool = False) -> AsyncEngine:
    """An engine tuned per backend: WAL and a busy timeout on SQLite, pre-ping and recycling on MySQL.

    Statement parameters never reach logs or exceptions (``hide_parameters``): they hold password
    hashes and token digests.
    """
    url = normalize_url(raw_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, hide_parameters=True, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_recycle=1800, pool_size=10, max_overflow=10
    )


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver's own transaction handling starts transactions late and lets a SAVEPOINT
    # release commit everything; take control of BEGIN so rollbacks and savepoints mean what they say.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=15000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A writing transaction takes SQLite's write lock up front (waiting up to the busy timeout), so
    # writers queue instead of failing with a stale snapshot, and a check-then-write inside one
    # transaction sees no other writer in between. Readers never take it.
    connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE) else "BEGIN")


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine, *, queue: bool = False) -> AsyncIterator[AsyncConnection]:
    """One writing transaction: committed when the block ends normally, rolled back otherwise.

    A store method is one of these, never more: no transaction is held across a service's calls.
    ``queue`` is for work-queue tables claimed with ``SKIP LOCKED`` (the outbox): on MySQL/MariaDB it
    reads committed, so claims take no gap locks and concurrent relays do not deadlock.
    """
    options: dict[str, object] = {WRITE: True}
    if queue and engine.dialect.name == "mysql":
        options["isolation_level"] = "READ COMMITTED"
    try:
        async with engine.connect() as connection:
            await connection.execution_options(**options)
            async with connection.begin():
                yield connection
    except DBAPIError as exc:  # integrity errors the store expects are mapped inside the block
        raise unavailable(exc) from exc


@contextlib.asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only connection; nothing it does is kept."""
    try:
        async with engine.connect() as connection:
            yield connection
    except DBAPIError as exc:
        raise unavailable(exc) from exc


def unavailable(exc: DBAPIError) -> Unavailable:
    """A database that is down, locked or deadlocked is a retryable 503, not a 500 with a trace."""
    logger.warning("database unavailable", extra={"error": type(exc.orig).__name__ if exc.orig else type(exc).__name__})
    return Unavailable("The database is busy or unavailable; try again.")


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))
