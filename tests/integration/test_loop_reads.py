"""SQLite reads on the event loop's thread (infra/db.LoopRead): they need no pooled connection, never wait for
a lock on the loop, and see committed state only."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.core.errors import Internal, Unavailable
from py_app.infra.db import _LOOP_READS, create_engine, reading, transaction

TIMEOUT = 2.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "reads.db"


@contextlib.asynccontextmanager
async def engine_on(path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{path}", timeout=TIMEOUT)
    try:
        yield engine
    finally:
        await engine.dispose()


@contextlib.contextmanager
def held(path: Path, begin: str) -> Iterator[sqlite3.Connection]:
    """Another client holding a lock on the database file until the block ends."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute(begin)
    try:
        yield holder
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def value(engine: AsyncEngine) -> str:
    async with reading(engine) as connection:
        return str((await connection.execute(sa.text("SELECT v FROM t WHERE id = 1"))).scalar_one())


async def make_table(engine: AsyncEngine) -> None:
    async with transaction(engine) as connection:
        await connection.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        await connection.execute(sa.text("INSERT INTO t VALUES (1, 'committed')"))


@pytest.mark.req("SRS-120", "SDD-120")
async def test_a_read_needs_no_pooled_connection_and_sees_only_committed_writes(path: Path) -> None:
    async with engine_on(path) as engine:
        await make_table(engine)
        async with contextlib.AsyncExitStack() as taken:

            async def take_them_all() -> None:  # every connection the pool will give, then wait for one more
                for _ in range(100):
                    await taken.enter_async_context(engine.connect())

            with pytest.raises(sa.exc.TimeoutError):
                await take_them_all()
            with held(path, "BEGIN IMMEDIATE") as writer:  # and another client is writing
                writer.execute("UPDATE t SET v = 'uncommitted' WHERE id = 1")
                assert await value(engine) == "committed"
                # A write must wait for that client's lock, which it does on a pooled connection: none is left.
                with pytest.raises(Unavailable):
                    async with transaction(engine) as connection:
                        await connection.execute(sa.text("UPDATE t SET v = 'mine' WHERE id = 1"))
            assert await value(engine) == "committed"


@pytest.mark.req("SRS-120", "SDD-120")
async def test_a_read_sees_each_commit_at_once(path: Path) -> None:
    async with engine_on(path) as engine:
        await make_table(engine)
        assert await value(engine) == "committed"
        async with transaction(engine) as connection:
            await connection.execute(sa.text("UPDATE t SET v = 'changed' WHERE id = 1"))
        assert await value(engine) == "changed"
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("UPDATE t SET v = 'by another process' WHERE id = 1")
        other.close()
        assert await value(engine) == "by another process"


@pytest.mark.req("SRS-120", "SDD-120")
async def test_a_read_that_meets_a_lock_waits_off_the_loop(path: Path) -> None:
    """A database not in WAL mode, locked by another client: the read waits for the lock in a driver thread,
    so the loop keeps running, and the callback that releases the lock lets it through. Had it waited on the
    loop's thread, the release could not run before the wait gave up, and the read would be Unavailable."""
    made = sqlite3.connect(path, isolation_level=None)
    made.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    made.execute("INSERT INTO t VALUES (1, 'committed')")
    made.close()
    async with engine_on(path) as engine:
        with held(path, "BEGIN EXCLUSIVE") as holder:
            asyncio.get_running_loop().call_later(0.3, holder.execute, "ROLLBACK")
            holder.execute("UPDATE t SET v = 'rolled back' WHERE id = 1")
            assert await value(engine) == "committed"
            holder.execute("BEGIN")  # for the context's own ROLLBACK


@pytest.mark.req("SDD-120")
async def test_a_read_leaves_its_connection_to_the_next_unless_it_failed(path: Path) -> None:
    async with engine_on(path) as engine:
        await make_table(engine)
        checkouts: list[object] = []
        event.listen(_LOOP_READS[engine], "checkout", lambda *_: checkouts.append(True))
        for _ in range(10):
            assert await value(engine) == "committed"
        assert len(checkouts) == 1  # the first read's connection served all ten
        with pytest.raises(Internal):
            async with reading(engine) as connection:
                await connection.execute(sa.text("SELECT v FROM no_such_table"))
        assert await value(engine) == "committed"
        assert len(checkouts) == 2  # the failed read's connection was given back, not kept


@pytest.mark.req("SRS-120", "SDD-120")
async def test_reads_that_overlap_never_share_a_kept_connection_or_its_snapshot(path: Path) -> None:
    async with engine_on(path) as engine:
        await make_table(engine)
        assert await value(engine) == "committed"  # leaves a connection to be kept
        async with reading(engine) as first:
            query = sa.text("SELECT v FROM t WHERE id = 1")
            assert (await first.execute(query)).scalar_one() == "committed"
            async with transaction(engine) as connection:
                await connection.execute(sa.text("UPDATE t SET v = 'changed' WHERE id = 1"))
            assert await value(engine) == "changed"  # a read begun after the commit sees it
            assert (await first.execute(query)).scalar_one() == "committed"  # one snapshot, to the end
        assert await value(engine) == "changed"


@pytest.mark.req("SRS-161", "SDD-120")
async def test_a_read_that_moved_to_the_pool_is_still_bounded(path: Path) -> None:
    """The lock is never released: the read that moved off the loop gives up within the engine's timeout, as
    Unavailable, and the next read after the lock is gone works on the loop again."""
    made = sqlite3.connect(path, isolation_level=None)
    made.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    made.execute("INSERT INTO t VALUES (1, 'committed')")
    made.close()
    async with engine_on(path) as engine:
        with held(path, "BEGIN EXCLUSIVE"):
            began = time.monotonic()
            with pytest.raises(Unavailable):
                await value(engine)
            assert time.monotonic() - began <= TIMEOUT + 1.5
        assert await value(engine) == "committed"
