"""MariaDB connections are pinged on checkout only after sitting idle (SDD-266): a connection the server
dropped while it was idle is replaced before a store uses it, and back-to-back calls pay no ping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.mysql.asyncmy import AsyncAdapt_asyncmy_connection
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.infra import db
from tests.conftest import mariadb_admin

pytestmark = pytest.mark.req("SDD-266")


@pytest.fixture
async def engine(mariadb_url: str) -> AsyncIterator[AsyncEngine]:
    built = db.create_engine(mariadb_url, timeout=2.0)
    try:
        yield built
    finally:
        await built.dispose()


async def _connection_id(engine: AsyncEngine) -> int:
    async with db.reading(engine) as reader:
        return int((await reader.execute(sa.text("SELECT CONNECTION_ID()"))).scalar_one())


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counted: list[int] = []
    ping = AsyncAdapt_asyncmy_connection.ping

    def counting(self: AsyncAdapt_asyncmy_connection, reconnect: bool) -> None:
        counted.append(1)
        ping(self, reconnect)

    monkeypatch.setattr(AsyncAdapt_asyncmy_connection, "ping", counting)
    return counted


async def test_calls_in_quick_succession_are_not_pinged_and_an_idle_one_is(
    engine: AsyncEngine, pings: list[int]
) -> None:
    first = await _connection_id(engine)
    again = [await _connection_id(engine) for _ in range(20)]
    assert again == [first] * 20  # one pooled connection, reused
    assert pings == []
    await asyncio.sleep(db.IDLE_PING_SECONDS + 0.2)
    assert await _connection_id(engine) == first
    assert len(pings) == 1


async def test_a_connection_the_server_dropped_while_idle_is_replaced_before_use(
    engine: AsyncEngine, pings: list[int]
) -> None:
    dropped = await _connection_id(engine)
    await mariadb_admin(f"KILL CONNECTION {dropped}")
    await asyncio.sleep(db.IDLE_PING_SECONDS + 0.2)
    replacement = await _connection_id(engine)  # no error: the ping failed and the pool reconnected
    assert replacement != dropped
    assert len(pings) == 1
