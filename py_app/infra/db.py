"""Database engine, shared metadata and column types for SQLite (aiosqlite) and MySQL/MariaDB (asyncmy)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Connection, CursorResult, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql import Executable
from sqlalchemy.util import greenlet_spawn

from py_app.core.errors import DomainError, Internal, Unavailable
from py_app.infra import request_reads, tracing

logger = logging.getLogger("arcana.db")
T = TypeVar("T")
WRITE = "arcana_write"  # execution option: this connection's transaction will write
DEADLINE = "arcana_deadline"  # engine execution option: seconds one store operation may take, or None
DEFAULT_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0  # for engines without a statement bound (migrations): connecting is still bounded
# SQLite serialises writers, so more connections do not write faster; a fixed pool never opens and closes
# connections (each an aiosqlite thread, a connect and the PRAGMAs) under load, and waits past it are bounded.
SQLITE_POOL = 20
MYSQL_POOL = 10  # connections kept by a process's main MySQL/MariaDB pool (10 more while busy)
# ``read_first``'s autocommit pool: a single-row read holds its connection for one round trip, so 20 serve a
# process at any load; all are kept, as an overflow connection is closed when given back (at c=16 with 5 kept
# and 15 more, a fifth of the reads' CPU went to connecting), and a 21st read waits for one.
MYSQL_READ_POOL, MYSQL_READ_OVERFLOW = 20, 0

# What "try again" means, per driver: the connection is gone or never came, the server is going away,
# a lock could not be had in time, a statement was cut short. Everything else is not the caller's to retry.
MYSQL_TRANSIENT = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown in progress
        1205,  # lock wait timeout
        1213,  # deadlock (the transaction was rolled back)
        1317,  # query execution was interrupted
        1927,  # connection was killed
        1969,  # max_statement_time exceeded
        2002,  # cannot connect through the socket
        2003,  # cannot connect to the server
        2006,  # server has gone away
        2013,  # lost connection during a query (asyncmy's read timeout too)
        2055,  # lost connection at a system error
        3024,  # max_execution_time exceeded
        4031,  # disconnected by the server for inactivity
    }
)
SQLITE_TRANSIENT = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN})

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


class PoolResetWarning(logging.Filter):
    """The pool's failed reset of a connection the database dropped is a warning, not an error with a traceback.

    When a deadline cuts a statement short, the pool's rollback on return can run over a link the database
    no longer answers, or be cancelled by the same deadline; SQLAlchemy then discards the connection (as it
    should) but logs it at error level with the driver's traceback. The request already got its 503 and
    ``database unavailable`` was logged: for a transient failure this becomes one warning naming the driver
    error, like that one.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.levelno == logging.ERROR and error is not None:
            number = error.args[0] if error.args and isinstance(error.args[0], int) else None
            # A cancellation is the deadline cutting the rollback short (the pool logs it as "Exception during
            # reset or similar" and discards the connection): as transient as the driver's own timeout, whether
            # it arrives as the cancellation or as asyncmy's own word for it.
            if (
                isinstance(error, TimeoutError | asyncio.CancelledError)
                or number in MYSQL_TRANSIENT
                or _cut_short(error)
            ):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                record.msg, record.args = "database connection dropped on return to the pool", ()
                record.exc_info, record.exc_text = None, None
                record.error, record.number = type(error).__name__, number
        return True


def _cut_short(error: BaseException) -> bool:
    """asyncmy's report of a command the deadline cancelled, or of a link already gone: ``InterfaceError`` with
    number 0 ("Cancelled during execution", "Not connected"; seen in CI under the slow-database test)."""
    from asyncmy.errors import InterfaceError  # only a failed reset pays for the import (SQLite never does)

    return isinstance(error, InterfaceError) and bool(error.args) and error.args[0] == 0


def _quiet_pool_resets() -> None:
    pool_logger = logging.getLogger(f"{AsyncAdaptedQueuePool.__module__}.{AsyncAdaptedQueuePool.__name__}")
    if not any(isinstance(existing, PoolResetWarning) for existing in pool_logger.filters):
        pool_logger.addFilter(PoolResetWarning())


def create_engine(raw_url: str, *, timeout: float | None = DEFAULT_TIMEOUT, echo: bool = False) -> AsyncEngine:
    """An engine tuned per backend: WAL and a busy timeout on SQLite, idle pings and recycling on MySQL.

    ``timeout`` bounds every database operation of a store (``transaction``, ``reading``, ``ping``):
    connecting, waiting for a pooled connection, each read from the server, SQLite's busy wait and
    MariaDB's lock wait, and the operation as a whole; past it the caller gets ``Unavailable``. ``None``
    (migrations: a schema change may run long) bounds only connecting.

    Statement parameters never reach logs or exceptions (``hide_parameters``): they hold password
    hashes and token digests.
    """
    url = normalize_url(raw_url)
    wait = CONNECT_TIMEOUT if timeout is None else timeout
    options: dict[str, Any] = {
        "echo": echo,
        "hide_parameters": True,
        "pool_timeout": wait,
        "execution_options": {DEADLINE: timeout},
    }
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # SQLite waits for its lock in a thread that cannot be cancelled: its own busy wait gives up first,
        # so the deadline never abandons a statement still running.
        busy = wait * 0.8
        engine = create_async_engine(
            url, connect_args={"timeout": busy}, pool_size=SQLITE_POOL, max_overflow=0, **options
        )
        event.listen(engine.sync_engine, "connect", _sqlite_connect(busy))
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        tracing.instrument_engine(engine)
        if timeout is not None and _file_database(url):
            _LOOP_READS[engine] = _loop_reads(url)
            _IDLE_READS[engine] = collections.deque()
            tracing.instrument_engine(_LOOP_READS[engine])
            _LOOP_WRITES[engine] = _loop_writes(url)
            tracing.instrument_engine(_LOOP_WRITES[engine])
        return engine
    _quiet_pool_resets()
    connect: dict[str, Any] = {"connect_timeout": wait}
    if timeout is not None:
        # asyncmy's connect_timeout covers only the TCP connect; the handshake and every statement wait on
        # reads, which a hung server never answers. The server's own lock wait gets the same bound, so it
        # gives up (and frees what it holds) when this client does.
        connect["read_timeout"] = timeout
        connect["init_command"] = f"SET SESSION innodb_lock_wait_timeout = {max(1, math.ceil(timeout))}"
    engine = create_async_engine(
        url, pool_recycle=1800, pool_size=MYSQL_POOL, max_overflow=10, connect_args=connect, **options
    )
    _ping_when_idle(engine)
    tracing.instrument_engine(engine)
    if timeout is not None:
        _single_reads(engine, url, connect, options)
    return engine


def _single_reads(engine: AsyncEngine, url: URL, connect: dict[str, Any], options: dict[str, Any]) -> None:
    """The pool ``read_first`` uses on MySQL/MariaDB: autocommit connections, nothing to reset on return.

    A statement on an autocommit connection is its own transaction, ended when its result is read, so the
    connection goes back to the pool without the ROLLBACK that the main pool's reset sends (a round trip).
    Disposed with the engine it serves."""
    reads = create_async_engine(
        url,
        pool_recycle=1800,
        pool_size=MYSQL_READ_POOL,
        max_overflow=MYSQL_READ_OVERFLOW,
        pool_reset_on_return=None,
        isolation_level="AUTOCOMMIT",
        connect_args=connect,
        **options,
    )
    _ping_when_idle(reads)
    tracing.instrument_engine(reads)
    _SINGLE_READS[engine] = reads
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: reads.sync_engine.dispose())


IDLE_PING_SECONDS = 1.0
_IDLE_SINCE = "arcana_idle_since"


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's pre-ping, for connections that sat in the pool for more than ``IDLE_PING_SECONDS``.

    ``pool_pre_ping`` pings on every checkout: a round trip more on each store call, a third of the
    statements of an uncached point query. A connection given back less than a second ago was working
    then; one the server dropped since (a restart, ``wait_timeout``, a cut link) has been idle for at least
    as long as the outage, or failed a statement of its own and was invalidated. A ping that fails raises
    ``DisconnectionError``, on which the pool replaces the connection and checks out again, as pre-ping does.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # new, or given back a moment ago
        try:
            dbapi_connection.ping(False)
        except Exception as error:  # whatever the driver raises, the connection is not usable
            raise DisconnectionError(f"idle connection failed its ping: {type(error).__name__}") from error


def _sqlite_connect(busy_seconds: float) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The sqlite3 driver's own transaction handling starts transactions late and lets a SAVEPOINT
        # release commit everything; take control of BEGIN so rollbacks and savepoints mean what they say.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        busy = f"busy_timeout={int(busy_seconds * 1000)}"
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", busy):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return on_connect


def _sqlite_begin(connection: Any) -> None:
    # A writing transaction takes SQLite's write lock up front (waiting up to the busy timeout), so
    # writers queue instead of failing with a stale snapshot, and a check-then-write inside one
    # transaction sees no other writer in between. Readers never take it.
    connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE) else "BEGIN")


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine, *, queue: bool = False) -> AsyncIterator[Writer]:
    """One writing transaction: committed when the block ends normally, rolled back otherwise.

    A store method is one of these, never more: no transaction is held across a service's calls. The
    whole block is bounded by the engine's timeout; a database failure leaves it as a DomainError.
    ``queue`` is for work-queue tables claimed with ``SKIP LOCKED`` (the outbox): on MySQL/MariaDB it
    reads committed, so claims take no gap locks and concurrent relays do not deadlock.

    On a SQLite file the transaction runs on the caller's thread through the stdlib driver (``LoopWrite``)
    when SQLite's write lock is free at once: no hand-off to an aiosqlite thread per statement, and no two
    writers of this process ever wait for each other's lock. When another process holds it, the loop tries
    again after short pauses (``LOCK_PAUSES``, 100 ms in all); only then does the transaction move to a pooled
    async connection, which waits within the deadline as before.
    """
    request_reads.forget()  # this request's later reads see what it wrote
    options: dict[str, object] = {WRITE: True}
    if queue and engine.dialect.name == "mysql":
        options["isolation_level"] = "READ COMMITTED"
    writes = _LOOP_WRITES.get(engine)
    try:
        async with asyncio.timeout(_deadline(engine)):
            on_loop = _begin_on_loop(writes) if writes is not None else None
            if writes is not None and on_loop is None:
                on_loop = await _lock_on_loop(writes)
            if on_loop is not None:
                with on_loop:  # closing it rolls back whatever is not committed
                    yield LoopWrite(on_loop)
                    if on_loop.in_transaction():  # not when the store rolled back early
                        on_loop.commit()
                # What follows a commit runs in a later iteration of the loop, as after an aiosqlite commit: a
                # commit counter kept for one iteration (ChangeCounter) is read afresh after this one.
                await asyncio.sleep(0)
            else:
                async with engine.connect() as connection:
                    await connection.execution_options(**options)
                    async with connection.begin():
                        yield connection
    except DATABASE_FAILURES as exc:  # integrity errors the store expects are mapped inside the block
        raise database_error(exc) from exc


class Reader(Protocol):
    """What a read needs of its connection: statements to execute, their results read inside the block."""

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None, /
    ) -> CursorResult[Any]: ...


class Writer(Protocol):
    """What a writing transaction needs of its connection: statements (one or many rows), the backend's
    dialect, and an early rollback (the block then ends without committing)."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None, /
    ) -> CursorResult[Any]: ...

    async def rollback(self) -> None: ...


@contextlib.asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[Reader]:
    """A read-only snapshot, bounded like ``transaction``; nothing it does is kept.

    On a SQLite file the statements run on the caller's thread through the stdlib driver (``LoopRead``):
    a read in WAL mode never waits for a lock, so it costs microseconds, against five hand-offs to an
    aiosqlite thread and back. Everywhere else (and when SQLite answers busy) it is a pooled async
    connection.
    """
    reads = _LOOP_READS.get(engine)
    try:
        if reads is None:
            async with asyncio.timeout(_deadline(engine)), engine.connect() as connection:
                yield connection
        else:
            # Bounded from the moment it moves to the pool (``LoopRead._to_pool``): on the loop's connection
            # nothing awaits, so a deadline could not fire there, and arming one cost a tenth of the read.
            async with LoopRead(engine, reads, _IDLE_READS[engine]) as connection:
                yield connection
    except DATABASE_FAILURES as exc:
        raise database_error(exc) from exc


def pools(engine: AsyncEngine) -> list[AsyncEngine]:
    """The engine and, on MySQL/MariaDB, the engine of its single-read pool (``read_first``)."""
    reads = _SINGLE_READS.get(engine)
    return [engine] if reads is None else [engine, reads]


async def read_first(
    engine: AsyncEngine, statement: Executable, parameters: Mapping[str, Any]
) -> Mapping[Any, Any] | None:
    """One statement read on its own: its first row, as a mapping of its columns' keys; None when none.

    ``reading`` + ``first`` for a read of one statement (a module constant), which needs no snapshot of its
    own. On MySQL/MariaDB it runs prepared (``Prepared``) on an autocommit connection of a pool of its own,
    awaited on the asyncmy driver directly: no SQLAlchemy Connection, greenlet hand-off per statement, or
    ROLLBACK on return. Measured in-process on the session read (2026-12-03): 750-1,000 µs of CPU through
    ``reading`` and 270-370 µs this way. Bounded and mapped like ``reading``; a statement that does not
    qualify, or an engine being traced, takes ``reading``'s path.
    """
    reads = _SINGLE_READS.get(engine)
    prepared = _prepared(reads.sync_engine, statement, parameters) if reads is not None else None
    if reads is None or prepared is None:
        async with reading(engine) as connection:
            return await first(connection, statement, parameters)
    try:
        async with asyncio.timeout(_deadline(engine)):
            return await _autocommit_first(reads, prepared, parameters)
    except DATABASE_FAILURES as exc:
        raise database_error(exc) from exc


async def _autocommit_first(reads: AsyncEngine, prepared: Prepared, values: Mapping[str, Any]) -> dict[str, Any] | None:
    dialect = reads.dialect
    dbapi: Any = dialect.loaded_dbapi
    bound = prepared.parameters(values)  # a bad value fails here, before a connection is taken
    try:
        # The pool's checkout in a greenlet, as SQLAlchemy's own: it may connect, or ping an idle connection.
        pooled = await greenlet_spawn(reads.sync_engine.raw_connection)
    except dbapi.Error as exc:  # a server down is a retry; a refused login or unknown database is not
        raise _mysql_error(exc, None, dialect, lost=bool(dialect.is_disconnect(exc, None, None))) from exc
    except DisconnectionError as exc:  # the pool's retries all failed their ping
        raise _mysql_error(dbapi.OperationalError(2013, str(exc)), None, dialect, lost=True) from exc
    try:
        driver: Any = pooled.driver_connection
        cursor = driver.cursor()
        await cursor.execute(prepared.sql, bound)
        row = await cursor.fetchone()
        await cursor.close()  # the result is buffered: no round trip
    except BaseException as exc:
        # Cut short (a deadline, a cancellation) or failed: what the connection holds is unknown, so it is
        # closed, never given back. ``invalidate`` also returns its slot to the pool.
        if isinstance(exc, AttributeError):  # asyncmy on a transport already gone, as SQLAlchemy reads it
            exc = dbapi.InternalError("network operation failed due to asyncmy attribute error")
        if isinstance(exc, dbapi.Error):
            lost = bool(dialect.is_disconnect(exc, pooled, None))
            if lost:
                pooled.invalidate()
            else:
                await greenlet_spawn(pooled.close)
            raise _mysql_error(exc, prepared.sql, dialect, lost=lost) from exc
        pooled.invalidate()  # outside a greenlet: the socket is closed at once, nothing awaited
        raise
    # In a greenlet: a connection the full pool does not keep is closed, which awaits the driver.
    await greenlet_spawn(pooled.close)
    return prepared.row(row)


def _mysql_error(exc: Exception, sql: str | None, dialect: Dialect, *, lost: bool) -> DBAPIError:
    """A driver error as SQLAlchemy raises it (``OperationalError`` ...), parameters hidden."""
    dbapi: Any = dialect.loaded_dbapi
    error = DBAPIError.instance(
        sql, None, exc, dbapi.Error, hide_parameters=True, connection_invalidated=lost, dialect=dialect
    )
    assert isinstance(error, DBAPIError)
    return error


async def first(connection: Reader, statement: Executable, parameters: Mapping[str, Any]) -> Mapping[Any, Any] | None:
    """The first row ``statement`` returns, as a mapping of its columns' keys; None when it returns none.

    For statements built once (module constants): on a SQLite loop connection they run on the driver itself
    (``Prepared``); everywhere else through SQLAlchemy, as ``execute(...).mappings().first()``.
    """
    if isinstance(connection, (LoopRead, LoopWrite)):
        return await connection.first(statement, parameters)
    return (await connection.execute(statement, parameters)).mappings().first()


async def run(
    connection: Writer, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> int:
    """Execute a write built once (one row of parameters, or many) and return the rows it matched."""
    if isinstance(connection, LoopWrite):
        return await connection.run(statement, parameters)
    return (await connection.execute(statement, parameters)).rowcount


class Prepared:
    """A Core statement compiled once for SQLite, run on the stdlib sqlite3 connection without SQLAlchemy's
    execution path: its SQL, its parameters in order with their bind processors, its result columns' keys
    with their result processors, all taken from SQLAlchemy's own compilation, so values go in and come out
    exactly as through ``Connection.execute``.

    Measured in-process on the loop (2026-12-03): the session read (``SqlSessionStore.state``, its block and
    snapshot included) took 146 µs through ``Connection.execute`` and 70-78 prepared, its bare statement with
    the same processors 25-30; a refresh's service call 551-663 µs and 265-460 prepared.

    Statements with effects beyond their SQL never qualify (``_prepare``): Python-side defaults, RETURNING,
    expanding or literal-rendered parameters, textual or literal column lists and columns keyed other than by
    name (``_loose``); nor does any statement while a cursor-level listener (tracing) is on the engine, which
    must see every statement, or a write outside the write lock (``LoopWrite.run``). They go through
    SQLAlchemy as before.
    """

    __slots__ = ("_binds", "_keys", "_results", "dialect", "sql")

    def __init__(
        self, sql: str, binds: tuple[tuple[str, Any, Any], ...], columns: tuple[tuple[str, Any], ...], dialect: Dialect
    ) -> None:
        self.sql = sql
        self.dialect = dialect
        self._binds = binds  # (name, own value or _REQUIRED, processor or None), in placeholder order
        self._keys = tuple(key for key, _ in columns)
        self._results = tuple(processor for _, processor in columns)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, own, processor in self._binds:
            value = values[name] if own is _REQUIRED else values.get(name, own)
            out.append(value if processor is None else processor(value))
        return tuple(out)

    def first(self, connection: Connection, values: Mapping[str, Any], *, begin: bool = False) -> dict[str, Any] | None:
        """The first row; ``begin``: open the read snapshot on the driver first, unless one is open."""
        try:
            driver = _driver(connection)
            if begin and not driver.in_transaction:
                driver.execute("BEGIN")  # ``_sqlite_reader_begin`` then adds none for SQLAlchemy's statements
            row = driver.execute(self.sql, self.parameters(values)).fetchone()
        except sqlite3.Error as exc:
            raise self._wrapped(exc, connection) from exc
        return self.row(row)

    def row(self, row: Sequence[Any] | None) -> dict[str, Any] | None:
        """A driver's row keyed and converted as SQLAlchemy's mapping of it would be."""
        if row is None:
            return None
        return {
            key: value if processor is None or value is None else processor(value)
            for key, processor, value in zip(self._keys, self._results, row, strict=True)
        }

    def run(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        driver = _driver(connection)
        try:
            if len(rows) == 1:
                return int(driver.execute(self.sql, self.parameters(rows[0])).rowcount)
            return int(driver.executemany(self.sql, [self.parameters(row) for row in rows]).rowcount)
        except sqlite3.Error as exc:
            raise self._wrapped(exc, connection) from exc

    def _wrapped(self, exc: sqlite3.Error, connection: Connection) -> DBAPIError:
        """The driver's error as SQLAlchemy raises it (IntegrityError, OperationalError ...), parameters hidden;
        a lost connection is invalidated, as SQLAlchemy would, so it is never kept and the error is a retry."""
        error_any: Any = exc
        lost = bool(self.dialect.is_disconnect(error_any, _driver(connection), None))
        if lost:
            connection.invalidate()
        error = DBAPIError.instance(
            self.sql, None, exc, sqlite3.Error, hide_parameters=True, connection_invalidated=lost, dialect=self.dialect
        )
        assert isinstance(error, DBAPIError)
        return error


_REQUIRED = object()
# Prepared statements by (statement, parameter names, dialect): the statement object is kept with its entry, so its id
# is never reused while the entry lives. None marks a statement that does not qualify. Bounded: call sites
# pass module constants, a few dozen entries; past the bound nothing more is compiled here, and statements
# not yet prepared run through SQLAlchemy (whose compiled cache still serves them).
_PREPARED: dict[tuple[int, frozenset[str], str], tuple[Executable, Prepared | None]] = {}
MAX_PREPARED = 256


def _prepared(engine: Engine, statement: Executable, parameters: Mapping[str, Any]) -> Prepared | None:
    if engine.dispatch.before_cursor_execute or engine.dispatch.after_cursor_execute:
        return None  # tracing sees every statement through SQLAlchemy
    dialect = engine.dialect
    key = (id(statement), frozenset(parameters), dialect.name)
    entry = _PREPARED.get(key)
    if entry is not None and entry[0] is statement:
        return entry[1]
    if len(_PREPARED) >= MAX_PREPARED:
        return None  # full (statements built per call reached here): SQLAlchemy's own cache serves the rest
    prepared = _PREPARED[key] = (statement, _prepare(statement, parameters, dialect))
    return prepared[1]


_POSITIONAL = frozenset({("sqlite", "qmark"), ("mysql", "format")})  # the drivers Prepared runs on


def _prepare(statement: Executable, parameters: Mapping[str, Any], dialect: Dialect) -> Prepared | None:
    if (dialect.name, dialect.paramstyle) not in _POSITIONAL or not isinstance(statement, sa.sql.ClauseElement):
        return None
    if isinstance(statement, sa.TextClause) or any(_loose(column) for column in _selected(statement)):
        return None  # rows whose columns the compilation does not list one by one, or keyed other than by name
    compiled: Any = statement.compile(dialect=dialect, column_keys=sorted(parameters))
    if (
        compiled._textual_ordered_columns  # noqa: SLF001
        or compiled._loose_column_name_matching  # noqa: SLF001
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.returning
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.positiontup is None
    ):
        return None
    processors = compiled._bind_processors  # noqa: SLF001 - the processors execute() applies, per bind name
    binds = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        if bind.expanding or bind.literal_execute or bind.callable is not None:
            return None
        binds.append((name, _REQUIRED if bind.required else bind.value, processors.get(name)))
    columns = tuple(
        (column.keyname, column.type._cached_result_processor(dialect, None))  # noqa: SLF001
        for column in compiled._result_columns  # noqa: SLF001
    )
    return Prepared(compiled.string, tuple(binds), columns, dialect)


def _selected(statement: Executable) -> Sequence[Any]:
    """What a statement selects: its columns, and what they were given as (``select(text("a, b"))`` has none)."""
    return [*getattr(statement, "selected_columns", ()), *getattr(statement, "_raw_columns", ())]


def _loose(column: Any) -> bool:
    """A selected column a prepared row could not key as SQLAlchemy does: text, a literal column (``*``), or a
    table column whose key is not its name (its row mapping answers to both)."""
    if isinstance(column, sa.TextClause) or getattr(column, "is_literal", False):
        return True
    return isinstance(column, sa.Column) and column.key != column.name


def _driver(connection: Connection) -> Any:
    return connection.connection.driver_connection


# The loop-thread readers of SQLite engines, dropped with their engine, and the connections each keeps
# between reads (KEPT_READS at most). A read that ended cleanly leaves its connection, rolled back, for the
# next: taking one from the deque costs 1 µs, where checking one out of the pool and back (its events, the
# Connection object, the reset on return) made a primary-key reading() block take 117-128 µs against 75-88
# on the benchmark machine. Deque operations are atomic, so loops on other threads (a CLI's, a test's)
# never take the same one.
_LOOP_READS: weakref.WeakKeyDictionary[AsyncEngine, Engine] = weakref.WeakKeyDictionary()
# The autocommit pools of MySQL/MariaDB engines (``read_first``), dropped and disposed with their engine.
_SINGLE_READS: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()
_IDLE_READS: weakref.WeakKeyDictionary[AsyncEngine, collections.deque[Connection]] = weakref.WeakKeyDictionary()
KEPT_READS = 4


class LoopRead:
    """One read snapshot on a stdlib sqlite3 connection, executed on the event loop's thread.

    The connection is ``query_only`` and never waits for a lock (``busy_timeout=0``): it cannot block the
    loop. The snapshot is a deferred ``BEGIN`` ended by a rollback, as on the async path, so several
    statements see one state. Should SQLite answer busy on the first statement (a checkpoint resetting
    the WAL, a database not yet in WAL mode), the read moves to a pooled async connection, which waits
    within the deadline like any other.
    """

    def __init__(self, engine: AsyncEngine, reads: Engine, idle: collections.deque[Connection]) -> None:
        self._engine = engine
        self._reads = reads
        self._idle = idle
        self._sync: Connection | None = None
        self._fallback: contextlib.AsyncExitStack | None = None
        self._async: AsyncConnection | None = None
        self._executed = False

    async def __aenter__(self) -> LoopRead:
        try:
            self._sync = self._idle.pop()
        except IndexError:
            self._sync = self._reads.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        sync, self._sync = self._sync, None
        if sync is not None:
            self._leave(sync, clean=exc_type is None)
        if self._fallback is not None:  # the pooled connection, then its deadline (a cancellation it caused
            await self._fallback.__aexit__(exc_type, exc, traceback)  # leaves as TimeoutError)

    def _leave(self, sync: Connection, clean: bool) -> None:
        """Keep the connection for the next read when this one ended cleanly and fewer than KEPT_READS wait;
        else close it (back to the pool, rolled back there), as after any failure."""
        if clean and not sync.invalidated and len(self._idle) < KEPT_READS:
            try:
                if sync.in_transaction():
                    sync.rollback()
                else:
                    driver = _driver(sync)
                    if driver.in_transaction:  # begun by a prepared read (``first``), on the driver
                        driver.rollback()
            except (DBAPIError, sqlite3.Error):  # the read itself succeeded: only this connection is lost
                sync.invalidate()
            else:
                self._idle.append(sync)
                return
        sync.close()

    async def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None, /) -> CursorResult[Any]:
        if self._async is not None:
            return await self._async.execute(statement, parameters)
        assert self._sync is not None
        first, self._executed = not self._executed, True
        try:
            return self._sync.execute(statement, parameters)
        except DBAPIError as exc:
            if not first or not _busy(exc):
                raise
        return await (await self._to_pool()).execute(statement, parameters)

    async def first(self, statement: Executable, parameters: Mapping[str, Any]) -> Mapping[Any, Any] | None:
        """The statement's first row (``db.first``): on the driver itself when ``Prepared`` allows it."""
        sync = self._sync
        prepared = _prepared(sync.engine, statement, parameters) if sync is not None and self._async is None else None
        if prepared is None or sync is None:
            return (await self.execute(statement, parameters)).mappings().first()
        first, self._executed = not self._executed, True
        try:
            return prepared.first(sync, parameters, begin=True)  # the snapshot, as SQLAlchemy would begin it
        except DBAPIError as exc:
            if not first or not _busy(exc):
                raise
        return (await (await self._to_pool()).execute(statement, parameters)).mappings().first()

    async def _to_pool(self) -> AsyncConnection:
        """SQLite answered busy on this read's first statement: the read moves to a pooled async connection."""
        assert self._sync is not None
        self._sync.close()
        self._sync = None
        self._fallback = contextlib.AsyncExitStack()
        await self._fallback.enter_async_context(asyncio.timeout(_deadline(self._engine)))
        self._async = await self._fallback.enter_async_context(self._engine.connect())
        return self._async


# The loop-thread writers of SQLite engines, dropped with their engine.
_LOOP_WRITES: weakref.WeakKeyDictionary[AsyncEngine, Engine] = weakref.WeakKeyDictionary()


class LoopWrite:
    """One writing transaction on a stdlib sqlite3 connection, executed on the event loop's thread.

    ``_begin_on_loop`` took SQLite's write lock (``BEGIN IMMEDIATE``) without waiting for it
    (``busy_timeout=0``), so no statement of the transaction can wait for a lock either: each runs in
    microseconds and the loop never blocks. Nothing here awaits, so a store's transaction runs from
    BEGIN to COMMIT within one step of the loop and no other writer of the process comes in between;
    the commit or rollback is the block's end in ``transaction``.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @property
    def dialect(self) -> Dialect:
        return self._connection.dialect

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None, /
    ) -> CursorResult[Any]:
        return self._connection.execute(statement, parameters)

    async def first(self, statement: Executable, parameters: Mapping[str, Any]) -> Mapping[Any, Any] | None:
        prepared = (
            _prepared(self._connection.engine, statement, parameters) if self._connection.in_transaction() else None
        )
        if prepared is None:
            return self._connection.execute(statement, parameters).mappings().first()
        return prepared.first(self._connection, parameters)

    async def run(self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> int:
        rows = [parameters] if isinstance(parameters, Mapping) else list(parameters)
        # After an early rollback no transaction holds the write lock: SQLAlchemy begins one, as it always did.
        prepared = (
            _prepared(self._connection.engine, statement, rows[0])
            if rows and self._connection.in_transaction()
            else None
        )
        if prepared is None:
            return self._connection.execute(statement, parameters).rowcount
        return prepared.run(self._connection, rows)

    async def rollback(self) -> None:
        self._connection.rollback()


# Tries for SQLite's write lock while another process holds it, on the loop, before the transaction moves to
# the async pool: pauses growing to 2 ms, for 100 ms in all. A writer holds the lock for a few hundred
# microseconds; the pool's connection waits in SQLite's busy handler, which sleeps 1, 2, 5, 10 ms... between
# its own tries, in a thread. Two workers refreshing on one file served a third of what one did that way
# (368 against 1,185 req/s at c=16). One waiter per process tries (``_GATES``); the others queue behind it.
LOCK_PAUSES = (0.0002, 0.0005, 0.001) + (0.002,) * 49
_GATES: weakref.WeakKeyDictionary[Engine, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = weakref.WeakKeyDictionary()


async def _lock_on_loop(writes: Engine) -> Connection | None:
    """The write lock on the loop's connection after short pauses (the loop serves others meanwhile), or None
    when it stayed taken throughout."""
    loop = asyncio.get_running_loop()
    bound = _GATES.get(writes)
    if bound is None or bound[0] is not loop:
        bound = _GATES[writes] = (loop, asyncio.Lock())
    async with bound[1]:
        for pause in LOCK_PAUSES:
            connection = _begin_on_loop(writes)
            if connection is not None:
                return connection  # the body runs before the next waiter does: nothing awaits in between
            await asyncio.sleep(pause)
    return None


def _begin_on_loop(writes: Engine) -> Connection | None:
    """A loop-thread connection holding SQLite's write lock, or None when another connection holds it."""
    connection: Connection | None = None
    try:
        connection = writes.connect()
        connection.begin()  # BEGIN IMMEDIATE, run by the begin event straight on the driver (not wrapped)
    except (DBAPIError, sqlite3.Error) as exc:
        if connection is not None:
            connection.close()
        if _busy(exc):
            return None
        if isinstance(exc, DBAPIError):
            raise
        raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc
    except BaseException:
        if connection is not None:
            connection.close()
        raise
    return connection


class ChangeCounter:
    """SQLite's count of commits to the database file by other connections (``PRAGMA data_version``):
    it moves when any worker or process commits, so a cache stamped with it sees every change.

    Read on a connection of its own that never writes (the pragma counts other connections' commits)
    and never waits for a lock. Should the pragma fail, each call returns a value never seen before,
    so a cache keyed on it misses instead of serving what it holds.

    On an event loop the value read is kept until the loop's next iteration, so the requests one
    iteration runs share one pragma. That loses nothing: whatever a request can have heard of (an
    acknowledged logout, revocation or change, in this process or another) reached it through the loop
    in a later iteration than the commit, and every iteration starts by forgetting the kept value
    (the callback that forgets it is queued before anything that iteration's I/O wakes up). A kept
    value is older than any statement run after it, so it can only make a cache miss, never serve.
    """

    def __init__(self, reads: Engine) -> None:
        self._reads = reads
        self._connection: Any = None
        self._unknown = 0
        self._kept: int | None = None

    def __call__(self) -> int:
        if self._kept is not None:
            return self._kept
        try:
            if self._connection is None:
                self._connection = self._reads.raw_connection()
            value = int(self._connection.driver_connection.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            self._unknown -= 1
            return self._unknown
        try:
            asyncio.get_running_loop().call_soon(self._forget)
        except RuntimeError:  # no loop (a CLI or a test's sync code): nothing marks an iteration's end
            return value
        self._kept = value
        return value

    def _forget(self) -> None:
        self._kept = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def change_counter(engine: AsyncEngine) -> ChangeCounter | None:
    """The commit counter of a SQLite file engine (see ``ChangeCounter``); None for other databases."""
    reads = _LOOP_READS.get(engine)
    return None if reads is None else ChangeCounter(reads)


def _file_database(url: URL) -> bool:
    database = url.database or ""
    return database not in ("", ":memory:") and url.query.get("mode") != "memory"


def _loop_reads(url: URL) -> Engine:
    # Checked out and returned on one thread with nothing awaited in between, so connections are only
    # opened when the pool is empty; an unbounded overflow means a checkout never waits on the loop.
    return _loop_engine(url, 2, _sqlite_reader_connect, _sqlite_reader_begin)


def _loop_writes(url: URL) -> Engine:
    # One transaction at a time takes the write lock, so one connection is used at a time; a second
    # is opened only while a block that awaited something else holds the first (it then finds the lock
    # taken and moves to the async pool).
    return _loop_engine(url, 1, _sqlite_writer_connect, _sqlite_writer_begin)


def _loop_engine(
    url: URL, pool_size: int, connect: Callable[[Any, Any], None], begin: Callable[[Connection], None]
) -> Engine:
    """A sync stdlib-sqlite3 engine beside the async one, used on the event loop's thread."""
    engine = sa.create_engine(
        url.set(drivername="sqlite+pysqlite"),
        hide_parameters=True,
        poolclass=sa.pool.QueuePool,
        pool_size=pool_size,
        max_overflow=-1,
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", connect)
    event.listen(engine, "begin", begin)
    return engine


def _sqlite_writer_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is ours, as on the async connections
    cursor = dbapi_connection.cursor()
    for pragma in ("busy_timeout=0", "journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_writer_begin(connection: Connection) -> None:
    # Straight to the driver, as for the readers; the write lock up front, as on the async path.
    connection.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _sqlite_reader_begin(connection: Connection) -> None:
    # Straight to the driver: through SQLAlchemy's execution path, the BEGIN cost as much as the read. A
    # prepared read (``LoopRead.first``) may have begun the snapshot on the driver already: it is kept.
    driver: Any = connection.connection.driver_connection
    if not driver.in_transaction:
        driver.execute("BEGIN")


def _sqlite_reader_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is ours, as on the writing connections
    cursor = dbapi_connection.cursor()
    for pragma in ("query_only=ON", "busy_timeout=0"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _busy(exc: DBAPIError | sqlite3.Error) -> bool:
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    number = getattr(error, "sqlite_errorcode", None)
    return number is not None and number & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


DATABASE_FAILURES = (DBAPIError, PoolTimeout, TimeoutError)


def database_error(exc: Exception) -> DomainError:
    """What a database failure means to the caller, logged once as the driver's class and number only.

    A database that is down, hung, locked or deadlocked is a retryable 503. Anything else (a value the
    schema refuses, an integrity error the store did not expect, a missing table) will fail again the
    same way: an internal error. Driver messages can quote the values involved, so they are not logged.
    """
    kind, number = _driver_error(exc)
    if _transient(exc, number):
        logger.warning("database unavailable", extra={"error": kind, "number": number})
        return Unavailable("The database is busy or unavailable; try again.")
    logger.error("database error", extra={"error": kind, "number": number})
    return Internal()


def _driver_error(exc: Exception) -> tuple[str, int | None]:
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    if orig is None:
        return type(exc).__name__, None
    if isinstance(orig, sqlite3.Error):
        return type(orig).__name__, getattr(orig, "sqlite_errorcode", None)
    number = orig.args[0] if orig.args and isinstance(orig.args[0], int) else None
    return type(orig).__name__, number


def _transient(exc: Exception, number: int | None) -> bool:
    if isinstance(exc, (PoolTimeout, TimeoutError, DisconnectionError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.Error):
        return number is not None and number & 0xFF in SQLITE_TRANSIENT  # extended codes keep the primary low
    return number in MYSQL_TRANSIENT


def _deadline(engine: AsyncEngine) -> float | None:
    deadline = engine.get_execution_options().get(DEADLINE)
    return float(deadline) if deadline is not None else None


async def run_bounded(engine: AsyncEngine, function: Callable[[Connection], T]) -> T:
    """``function`` on a synchronous connection, within the engine's timeout; driver errors as they are."""
    async with asyncio.timeout(_deadline(engine)), engine.connect() as connection:
        return await connection.run_sync(function)


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer a trivial query within the engine's timeout."""
    async with asyncio.timeout(_deadline(engine)), engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))
