"""SQLite writes on the event loop's thread (infra/db.LoopWrite): a writing transaction of this process takes
the file's write lock without waiting, runs on the loop's own connection, commits or rolls back as the block
ends; when another client holds the lock, the write waits for it off the loop on a pooled connection."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.auth.models import RotationOutcome, SessionRules, new_refresh_token, token_digest
from py_app.auth.repositories import SqlSessionStore
from py_app.infra import db, migrations
from py_app.infra.db import create_engine, transaction
from py_app.users.repositories import SqlUserStore
from tests.integration.test_loop_reads import held, make_table
from tests.ports.conftest import make_session, make_user

TIMEOUT = 2.0


@contextlib.asynccontextmanager
async def engine_on(path: Path, bound: float = TIMEOUT) -> AsyncIterator[tuple[AsyncEngine, list[object]]]:
    """An engine (database timeout ``bound``), and the pooled (async) connections it has checked out so far."""
    engine = create_engine(f"sqlite:///{path}", timeout=bound)
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda *args: checkouts.append(args[0]))
    try:
        yield engine, checkouts
    finally:
        await engine.dispose()


def committed(path: Path) -> str:
    """The row as another client sees it: only what was committed."""
    other = sqlite3.connect(path)
    try:
        return str(other.execute("SELECT v FROM t WHERE id = 1").fetchone()[0])
    finally:
        other.close()


@pytest.mark.req("SRS-126", "SDD-126")
async def test_a_write_commits_on_the_loop_and_rolls_back_on_failure_or_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "writes.db"
    async with engine_on(path) as (engine, checkouts):
        await make_table(engine)
        async with transaction(engine) as connection:
            await connection.execute(sa.text("UPDATE t SET v = 'changed' WHERE id = 1"))
        assert committed(path) == "changed"

        async def failing() -> None:
            async with transaction(engine) as connection:
                await connection.execute(sa.text("UPDATE t SET v = 'failed' WHERE id = 1"))
                raise RuntimeError("the store's block failed")

        with pytest.raises(RuntimeError):
            await failing()
        assert committed(path) == "changed"
        async with transaction(engine) as connection:
            await connection.execute(sa.text("UPDATE t SET v = 'rolled back' WHERE id = 1"))
            await connection.rollback()  # as a store does when what it verified no longer holds
        assert committed(path) == "changed"
        assert checkouts == []  # not one of them took a pooled connection


@pytest.mark.req("SRS-126", "SDD-126")
async def test_a_write_that_meets_another_clients_lock_waits_for_it_off_the_loop(tmp_path: Path) -> None:
    """Another process holds the write lock; it lets go 0.3 s later from a loop callback. Had the write waited on
    the loop's thread, the callback could not run before the wait gave up and the write would be Unavailable."""
    path = tmp_path / "writes.db"
    async with engine_on(path) as (engine, checkouts):
        await make_table(engine)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        with held(path, "BEGIN IMMEDIATE") as holder:
            holder.execute("UPDATE t SET v = 'theirs' WHERE id = 1")
            asyncio.get_running_loop().call_later(0.3, holder.execute, "COMMIT")
            async with transaction(engine) as connection:
                await connection.execute(sa.text("UPDATE t SET v = v || ', then mine' WHERE id = 1"))
            holder.execute("BEGIN")  # for the context's own ROLLBACK
        ticker.cancel()
        assert committed(path) == "theirs, then mine"
        assert len(checkouts) == 1  # the wait was on a pooled connection
        assert ticks >= 10  # and the loop went on meanwhile


@pytest.mark.req("SRS-126", "SDD-269")
async def test_writes_meeting_a_short_lock_wait_for_it_on_the_loop_one_trying_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock for 30 ms: ten writes of this process get it on the loop's own
    connection after short pauses (no pooled connection, no busy handler sleeping in a thread), and while
    it is held only one of them keeps trying."""
    path = tmp_path / "writes.db"
    attempts = 0
    begin = db._begin_on_loop  # noqa: SLF001 - counting the tries is the point

    def counted(writes: sa.Engine) -> sa.Connection | None:
        nonlocal attempts
        attempts += 1
        return begin(writes)

    monkeypatch.setattr(db, "_begin_on_loop", counted)
    async with engine_on(path) as (engine, checkouts):
        await make_table(engine)
        attempts = 0

        async def append(index: int) -> None:
            async with transaction(engine) as connection:
                await connection.execute(sa.text(f"UPDATE t SET v = v || ',{index}' WHERE id = 1"))

        with held(path, "BEGIN IMMEDIATE") as holder:
            asyncio.get_running_loop().call_later(0.03, holder.execute, "COMMIT")
            await asyncio.gather(*(append(index) for index in range(10)))
            holder.execute("BEGIN")  # for the context's own ROLLBACK
        assert sorted(committed(path).split(",")[1:]) == sorted(str(index) for index in range(10))
        assert checkouts == []  # every write ran on the loop's connection
        assert attempts < 40  # ten first tries, one waiter's polls (about 15 in 30 ms), one try per other write


@pytest.mark.req("SRS-126", "SRS-127", "SDD-126")
async def test_concurrent_rotations_of_one_process_never_wait_for_each_others_lock(tmp_path: Path) -> None:
    """64 refreshes at once, each of its own session, under a 1 s database timeout: every one rotates, none is
    Unavailable. Each rotation used to wait for the others' write lock in SQLite's busy handler (which sleeps
    in steps of up to 100 ms) on one of 20 pooled connections, and under load some gave up (503)."""
    path = tmp_path / "rotations.db"
    url = f"sqlite:///{path}"
    await asyncio.to_thread(migrations.upgrade, url)
    rules = SessionRules(idle_seconds=600, absolute_seconds=3600, reuse_grace_seconds=10)
    now = datetime.now(UTC)
    async with engine_on(path, bound=1.0) as (engine, checkouts):
        user = make_user()
        await SqlUserStore(engine).add(user)
        store = SqlSessionStore(engine)
        digests = []
        for _ in range(64):
            digest = token_digest(new_refresh_token())
            assert await store.open(make_session(user, at=now), digest)
            digests.append(digest)
        later = now + timedelta(seconds=1)
        rotations = await asyncio.gather(
            *(store.rotate(digest, token_digest(new_refresh_token()), later, rules) for digest in digests)
        )
        assert [rotation.outcome for rotation in rotations] == [RotationOutcome.ROTATED] * 64
        assert {rotation.session.last_used_at for rotation in rotations if rotation.session} == {later}
        assert checkouts == []
        again = await store.rotate(digests[0], token_digest(new_refresh_token()), later + timedelta(minutes=1), rules)
        assert again.outcome is RotationOutcome.REUSED  # spent means spent, on the loop as on the pool
