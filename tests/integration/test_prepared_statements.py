"""Statements built once, run on the SQLite loop connections' driver (infra/db.Prepared, through db.first and
db.run): the same rows, the same errors and the same snapshot as through SQLAlchemy, and only where nothing
but their SQL is at stake."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.auth.repositories import _STATE as SESSION_STATE
from py_app.auth.repositories import SqlSessionStore
from py_app.core.errors import Internal, Unavailable
from py_app.infra import db
from py_app.infra.db import _IDLE_READS, _LOOP_READS, _PREPARED, UTCDateTime, first, reading, run
from py_app.infra.db import transaction as writing
from py_app.users.repositories import SqlUserStore
from tests.integration.test_loop_reads import engine_on
from tests.ports.conftest import make_session, make_user

NOW = datetime(2026, 12, 3, 9, 0, 0, 123456, tzinfo=UTC)

things = sa.Table(
    "things",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(20), nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=True),
    sa.Column("tag", sa.String(20), nullable=False, default="python-side"),
)
BY_ID = sa.select(things).where(things.c.id == sa.bindparam("id"))
NAMED = sa.insert(things)
RENAME = things.update().where(things.c.id == sa.bindparam("thing")).values(name=sa.bindparam("new_name"))


async def with_things(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(things.metadata.create_all)
        await connection.execute(NAMED, [{"id": 1, "name": "one", "seen_at": NOW, "tag": "t"}])


async def name_of(connection: db.Reader, thing: int) -> str:
    row = await first(connection, BY_ID, {"id": thing})
    assert row is not None
    return str(row["name"])


def kept_in_transaction(engine: AsyncEngine) -> bool:
    """Whether the connection the last read kept is in a transaction, by SQLAlchemy's account or the driver's."""
    kept = _IDLE_READS[engine][-1]
    return kept.in_transaction() or bool(kept.connection.driver_connection.in_transaction)  # type: ignore[union-attr]


def prepared(statement: sa.Executable) -> bool:
    """Whether the statement has run prepared (an entry that is not None)."""
    return any(entry[0] is statement and entry[1] is not None for entry in _PREPARED.values())


@pytest.mark.req("SDD-128")
async def test_the_session_read_returns_what_sqlalchemy_returns(tmp_path: Path) -> None:
    from py_app.infra.db import metadata  # every table of the service, as the migrations make them

    async with engine_on(tmp_path / "app.db") as engine:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        user = make_user("prepared", created_at=NOW, updated_at=NOW)
        await SqlUserStore(engine).add(user)
        session = make_session(user, at=NOW)
        assert await SqlSessionStore(engine).open(session, "d" * 64)
        parameters = {"session_id": session.id, "user_id": user.id}
        async with reading(engine) as connection:
            fast = await first(connection, SESSION_STATE, parameters)
            slow = (await connection.execute(SESSION_STATE, parameters)).mappings().first()
        assert prepared(SESSION_STATE)
        assert slow is not None
        assert fast == dict(slow)
        assert fast["created_at"] == NOW
        assert fast["created_at"].tzinfo is UTC
        assert fast["account_username"] == "prepared"
        assert fast["account_last_login_at"] is None
        state = await SqlSessionStore(engine).state(session.id, user.id)
        assert state is not None
        assert state.session == session


@pytest.mark.req("SDD-128")
async def test_a_prepared_write_binds_like_sqlalchemy_and_fails_with_its_errors(tmp_path: Path) -> None:
    async with engine_on(tmp_path / "things.db") as engine:
        await with_things(engine)
        async with writing(engine) as connection:
            assert await run(connection, RENAME, {"thing": 1, "new_name": "uno"}) == 1
            assert await run(connection, RENAME, {"thing": 2, "new_name": "dos"}) == 0
        assert prepared(RENAME)
        async with writing(engine) as connection:
            with pytest.raises(sa.exc.IntegrityError):  # as SQLAlchemy raises it, so stores catch it as before
                await run(connection, NAMED, {"id": 1, "name": "again", "seen_at": None, "tag": "t"})
        async with reading(engine) as connection:
            row = await first(connection, BY_ID, {"id": 1})
        assert row == {"id": 1, "name": "uno", "seen_at": NOW, "tag": "t"}
        assert prepared(BY_ID)


@pytest.mark.req("SDD-128")
async def test_statements_with_effects_beyond_their_sql_run_through_sqlalchemy(tmp_path: Path) -> None:
    async with engine_on(tmp_path / "things.db") as engine:
        await with_things(engine)
        # A Python-side default (tag) is computed by SQLAlchemy for a row that leaves it out.
        async with writing(engine) as connection:
            await run(connection, NAMED, {"id": 2, "name": "two", "seen_at": None})
        async with reading(engine) as connection:
            assert (await first(connection, BY_ID, {"id": 2})) == {
                "id": 2,
                "name": "two",
                "seen_at": None,
                "tag": "python-side",
            }
        entries = [entry for key, entry in _PREPARED.items() if entry[0] is NAMED and "tag" not in key[1]]
        assert entries
        assert entries[0][1] is None
        # An expanding IN list is rendered per call by SQLAlchemy.
        listed = sa.select(things.c.id).where(things.c.id.in_(sa.bindparam("ids", expanding=True)))
        async with reading(engine) as connection:
            assert (await first(connection, listed, {"ids": [2]})) == {"id": 2}
        assert not prepared(listed)
        # With tracing on, every statement goes through SQLAlchemy, where the span listeners see it.
        seen: list[str] = []
        event.listen(_LOOP_READS[engine], "before_cursor_execute", lambda _c, _k, sql, *_: seen.append(sql))
        async with reading(engine) as connection:
            assert await name_of(connection, 1) == "one"
        assert seen
        assert seen[-1].startswith("SELECT things.id")


@pytest.mark.req("SDD-128", "SDD-120")
async def test_prepared_and_sqlalchemy_reads_of_one_block_share_its_snapshot_and_end_it(tmp_path: Path) -> None:
    path = tmp_path / "things.db"
    async with engine_on(path) as engine:
        await with_things(engine)
        async with reading(engine) as connection:
            assert await name_of(connection, 1) == "one"
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("UPDATE things SET name = 'changed' WHERE id = 1")
            other.close()
            # The next statement, through SQLAlchemy, reads in the snapshot the prepared one began.
            assert (await connection.execute(sa.select(things.c.name))).scalar_one() == "one"
        assert not kept_in_transaction(engine)
        async with reading(engine) as connection:
            assert await name_of(connection, 1) == "changed"
        assert not kept_in_transaction(engine)
    assert len(_PREPARED) <= db.MAX_PREPARED


@pytest.mark.req("SDD-128")
async def test_rows_the_compilation_does_not_key_by_name_come_through_sqlalchemy(tmp_path: Path) -> None:
    async with engine_on(tmp_path / "things.db") as engine:
        await with_things(engine)
        keyed = sa.Table(
            "things",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String, key="label"),
        )
        statements: dict[str, sa.Executable] = {
            "text": sa.text("SELECT id, name FROM things WHERE id = :id"),
            "literal *": sa.select(sa.literal_column("*")).select_from(things).where(things.c.id == sa.bindparam("id")),
            "text columns": sa.select(sa.text("id, name")).select_from(things).where(things.c.id == sa.bindparam("id")),
            "column key": sa.select(keyed).where(keyed.c.id == sa.bindparam("id")),
        }
        async with reading(engine) as connection:
            for name, statement in statements.items():
                row = await first(connection, statement, {"id": 1})
                expected = (await connection.execute(statement, {"id": 1})).mappings().first()
                assert row == expected, name
                assert not prepared(statement), name
            row = await first(connection, statements["column key"], {"id": 1})
            assert row is not None
            assert row["label"] == "one"


@pytest.mark.req("SDD-128")
async def test_a_write_after_an_early_rollback_is_in_a_transaction_again(tmp_path: Path) -> None:
    """A store that rolled back and then wrote again: the write is SQLAlchemy's, in a transaction of its own, so
    the block's failure still undoes it (on the driver it would have been committed at once)."""
    async with engine_on(tmp_path / "things.db") as engine:
        await with_things(engine)

        async def roll_back_write_then_fail() -> None:
            async with writing(engine) as connection:
                await connection.rollback()
                assert await run(connection, RENAME, {"thing": 1, "new_name": "kept?"}) == 1
                await connection.execute(sa.text("SELECT * FROM missing_table"))

        with pytest.raises(Internal):
            await roll_back_write_then_fail()
        async with reading(engine) as connection:
            assert await name_of(connection, 1) == "one"


@pytest.mark.req("SDD-128")
async def test_a_connection_lost_under_a_prepared_read_is_dropped_and_the_read_is_a_retry(tmp_path: Path) -> None:
    async with engine_on(tmp_path / "things.db") as engine:
        await with_things(engine)
        assert await_name(await await_first_read(engine)) == "one"
        lost = _IDLE_READS[engine][-1]
        lost.connection.driver_connection.close()  # type: ignore[union-attr]
        with pytest.raises(Unavailable):
            await await_first_read(engine)
        assert lost not in _IDLE_READS[engine]
        assert await_name(await await_first_read(engine)) == "one"  # a new connection serves the next


async def await_first_read(engine: AsyncEngine) -> dict[str, object]:
    async with reading(engine) as connection:
        row = await first(connection, BY_ID, {"id": 1})
    assert row is not None
    return dict(row)


def await_name(row: dict[str, object]) -> str:
    return str(row["name"])
