"""The user records' cache: a point query's read served from memory only while the database has not changed
since the record was read, so no acknowledged write, by any worker or process, is ever read past."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from py_app.infra import migrations
from py_app.infra.cache import CachedUserStore
from py_app.infra.db import change_counter, create_engine
from py_app.users.models import User, UserChanges
from py_app.users.repositories import SqlUserStore
from tests.fakes import InMemoryUserStore, RecordingMetrics
from tests.ports.conftest import make_user

pytestmark = pytest.mark.req("SRS-255", "SDD-255")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Commits:
    """A stand-in for the database's commit counter."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


class CountedStore(InMemoryUserStore):
    """The in-memory store, counting the reads that reach it; ``during_read`` runs while one is under way."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.during_read = lambda: None

    async def get(self, user_id: str) -> User | None:
        self.reads += 1
        self.during_read()
        return await super().get(user_id)


async def test_a_record_is_read_once_while_nothing_commits_and_again_after_any_commit() -> None:
    store, commits, metrics = CountedStore(), Commits(), RecordingMetrics()
    cached = CachedUserStore(store, ttl=60, changes=commits, metrics=metrics)
    alice = make_user()
    await store.add(alice)
    assert [await cached.get(alice.id) for _ in range(3)] == [alice] * 3
    assert store.reads == 1
    assert (metrics.counts["cache", "user", "miss"], metrics.counts["cache", "user", "hit"]) == (1, 2)
    renamed = replace(alice, first_name="Alicia")
    await store.update(
        alice.id, UserChanges(first_name="Alicia"), NOW
    )  # another worker's write: only the counter moves
    commits.count += 1
    assert (await cached.get(alice.id)).first_name == renamed.first_name  # type: ignore[union-attr]
    assert store.reads == 2


async def test_a_read_that_raced_a_commit_is_not_kept() -> None:
    store, commits = CountedStore(), Commits()
    cached = CachedUserStore(store, ttl=60, changes=commits)
    alice = make_user()
    await store.add(alice)

    def commit() -> None:
        commits.count += 1

    store.during_read = commit  # a commit lands while the record is read
    await cached.get(alice.id)
    store.during_read = lambda: None
    await cached.get(alice.id)
    assert store.reads == 2


async def test_writes_through_it_drop_the_record_even_before_the_counter_moves() -> None:
    store, commits = CountedStore(), Commits()
    cached = CachedUserStore(store, ttl=60, changes=commits)
    alice = make_user()
    await cached.add(alice)
    await cached.get(alice.id)
    updated = await cached.update(alice.id, UserChanges(last_name="Liddell"), NOW)
    assert updated is not None
    assert (await cached.get(alice.id)) == updated
    assert await cached.delete(alice.id, NOW)
    assert await cached.get(alice.id) is None
    assert store.reads == 3


async def test_records_expire_after_the_ttl_and_unknown_ids_are_never_kept() -> None:
    store, commits = CountedStore(), Commits()
    cached = CachedUserStore(store, ttl=0.0, changes=commits)
    alice = make_user()
    await store.add(alice)
    await cached.get(alice.id)
    await cached.get(alice.id)
    assert await cached.get("missing") is None
    assert await cached.get("missing") is None
    assert store.reads == 4


@pytest.mark.req("SRS-121")
async def test_over_a_sqlite_file_another_processs_commit_is_seen_from_the_next_loop_iteration(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/users.db"
    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url)
    counter = change_counter(engine)
    assert counter is not None
    try:
        alice = make_user()
        sql = SqlUserStore(engine)
        await sql.add(alice)
        cached = CachedUserStore(sql, ttl=60, changes=counter)
        assert (await cached.get(alice.id)) == alice
        other = sqlite3.connect(tmp_path / "users.db", isolation_level=None)  # another process renames her
        other.execute("UPDATE users SET first_name = 'Alicia' WHERE id = ?", (alice.id,))
        other.close()
        await asyncio.sleep(0)  # whoever was told of that commit is served in a later loop iteration
        assert (await cached.get(alice.id)).first_name == "Alicia"  # type: ignore[union-attr]
    finally:
        counter.close()
        await engine.dispose()
