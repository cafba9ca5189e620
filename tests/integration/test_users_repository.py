from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.core.errors import Conflict
from py_app.infra import migrations
from py_app.infra.db import create_engine
from py_app.infra.uow import SqlUnitOfWork
from py_app.users.models import Role, User, new_user_id

pytestmark = pytest.mark.req("SRS-012")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(migrations.upgrade, database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def make_user(username: str, email: str) -> User:
    now = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    return User(id=new_user_id(), username=username, email=email, password_hash="h", created_at=now, updated_at=now)


async def test_a_user_round_trips_with_utc_microsecond_times(engine: AsyncEngine) -> None:
    user = make_user("Alice", "alice@example.com")
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.add(user)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        loaded = await uow.users.get(user.id)
    assert loaded == user
    assert loaded is not None
    assert loaded.created_at.tzinfo is UTC
    assert loaded.role is Role.USER


async def test_login_lookup_is_case_insensitive_for_username_and_email(engine: AsyncEngine) -> None:
    user = make_user("Alice", "alice@example.com")
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.add(user)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert (await uow.users.get_by_login("aLiCe")) == user
        assert (await uow.users.get_by_login("ALICE@example.com")) == user
        assert (await uow.users.get_by_login("nobody")) is None


async def test_duplicates_conflict_and_keep_the_transaction_usable(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.add(make_user("Alice", "alice@example.com"))
        with pytest.raises(Conflict):
            await uow.users.add(make_user("ALICE", "other@example.com"))
        with pytest.raises(Conflict):
            await uow.users.add(make_user("bob", "alice@example.com"))
        await uow.users.add(make_user("carol", "carol@example.com"))
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.users.count() == 2


async def test_leaving_without_commit_keeps_nothing(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.add(make_user("dave", "dave@example.com"))
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.users.count() == 0


async def test_emails_that_differ_only_in_accents_are_different_users(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.add(make_user("strasse", "strasse@example.com"))
        await uow.users.add(make_user("strasze", "straße@example.com"))
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert (await uow.users.get_by_login("straße@example.com")).username == "strasze"  # type: ignore[union-attr]
        assert await uow.users.count() == 2
