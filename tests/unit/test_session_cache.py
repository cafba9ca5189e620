"""The in-process session cache: versioned per session and per user, so a stale fill is refused; with a commit
counter, every commit to the database ends every entry."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from py_app.core.identity import Principal
from py_app.infra.cache import InProcessSessionCache
from py_app.infra.db import change_counter, create_engine, reading, transaction

ALICE = Principal("user-a", "session-a", "user")
BOB = Principal("user-b", "session-b", "user")

pytestmark = pytest.mark.req("SDD-083")


async def test_a_fill_read_before_a_forget_is_refused_and_others_are_kept() -> None:
    cache = InProcessSessionCache(ttl=60)
    alice, bob = await cache.stamp(ALICE.session_id, ALICE.user_id), await cache.stamp(BOB.session_id, BOB.user_id)
    await cache.forget([ALICE.session_id])  # alice logs out while both requests read the database
    await cache.put(ALICE, alice)
    await cache.put(BOB, bob)
    assert await cache.get(ALICE.session_id) is None
    assert await cache.get(BOB.session_id) == BOB


async def test_forgetting_a_user_drops_their_entries_and_voids_their_fills() -> None:
    cache = InProcessSessionCache(ttl=60)
    await cache.put(BOB, await cache.stamp(BOB.session_id, BOB.user_id))
    racing = await cache.stamp(BOB.session_id, BOB.user_id)
    await cache.forget_user(BOB.user_id)  # e.g. a role change
    assert await cache.get(BOB.session_id) is None
    await cache.put(BOB, racing)
    assert await cache.get(BOB.session_id) is None
    await cache.put(BOB, await cache.stamp(BOB.session_id, BOB.user_id))
    assert await cache.get(BOB.session_id) == BOB


async def test_clearing_a_full_cache_still_refuses_fills_stamped_before_it() -> None:
    cache = InProcessSessionCache(ttl=60, max_entries=2)
    stale = await cache.stamp(ALICE.session_id, ALICE.user_id)
    await cache.forget([ALICE.session_id, "x", "y"])  # more versions than the bound: the tables are cleared
    await cache.put(ALICE, stale)  # its session version restarted at 0, but the epoch moved on
    assert await cache.get(ALICE.session_id) is None


async def test_entries_expire_after_the_ttl() -> None:
    cache = InProcessSessionCache(ttl=0.0)
    await cache.put(ALICE, await cache.stamp(ALICE.session_id, ALICE.user_id))
    assert await cache.get(ALICE.session_id) is None


class Commits:
    """A stand-in for the database's commit counter."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


@pytest.mark.req("SRS-121", "SDD-121")
async def test_with_a_commit_counter_an_entry_lives_only_until_the_next_commit() -> None:
    commits = Commits()
    cache = InProcessSessionCache(ttl=60, changes=commits)
    await cache.put(ALICE, await cache.stamp(ALICE.session_id, ALICE.user_id))
    assert await cache.get(ALICE.session_id) == ALICE
    commits.count += 1  # another worker revoked something: this one was told nothing else
    assert await cache.get(ALICE.session_id) is None


@pytest.mark.req("SRS-121", "SDD-121")
async def test_with_a_commit_counter_a_fill_read_before_a_commit_is_refused() -> None:
    commits = Commits()
    cache = InProcessSessionCache(ttl=60, changes=commits)
    racing = await cache.stamp(ALICE.session_id, ALICE.user_id)
    commits.count += 1  # a commit lands while the request reads the database
    await cache.put(ALICE, racing)
    assert await cache.get(ALICE.session_id) is None


@pytest.mark.req("SRS-121", "SDD-121")
async def test_the_sqlite_commit_counter_sees_other_connections_commits(tmp_path: Path) -> None:
    path = tmp_path / "counter.db"
    engine = create_engine(f"sqlite:///{path}")
    counter = change_counter(engine)
    assert counter is not None
    try:
        async with transaction(engine) as connection:
            await connection.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        cache = InProcessSessionCache(ttl=60, changes=counter)
        await cache.put(ALICE, await cache.stamp(ALICE.session_id, ALICE.user_id))
        async with reading(engine) as reader:  # reads change nothing
            await reader.execute(sa.text("SELECT count(*) FROM t"))
        assert await cache.get(ALICE.session_id) == ALICE
        async with transaction(engine) as connection:  # this process's own commit
            await connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert await cache.get(ALICE.session_id) is None
        await cache.put(ALICE, await cache.stamp(ALICE.session_id, ALICE.user_id))
        other = sqlite3.connect(path, isolation_level=None)  # another process's commit
        other.execute("INSERT INTO t VALUES (2)")
        other.close()
        await asyncio.sleep(0)  # a request that follows a commit comes in a later loop iteration
        assert await cache.get(ALICE.session_id) is None
    finally:
        counter.close()
        await engine.dispose()


@pytest.mark.req("SRS-121", "SDD-122")
async def test_the_commit_counter_is_read_once_per_loop_iteration_and_afresh_in_the_next(tmp_path: Path) -> None:
    path = tmp_path / "iteration.db"
    engine = create_engine(f"sqlite:///{path}")
    counter = change_counter(engine)
    assert counter is not None
    try:
        async with transaction(engine) as connection:
            await connection.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        before = counter()
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("INSERT INTO t VALUES (1)")
        other.close()
        assert counter() == before  # the same iteration: the value read at its start is kept
        await asyncio.sleep(0)  # the next iteration, where anything caused by that commit can first arrive
        assert counter() != before
    finally:
        counter.close()
        await engine.dispose()
