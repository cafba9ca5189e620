from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from py_app.infra import migrations
from py_app.infra.db import create_engine

pytestmark = pytest.mark.req("SRS-005")


async def _tables_and_indexes(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            def read(sync: sa.Connection) -> tuple[set[str], set[str]]:
                inspector = sa.inspect(sync)
                tables = set(inspector.get_table_names())
                if "users" not in tables:
                    return tables, set()
                indexes = {str(index["name"]) for index in inspector.get_indexes("users")}
                uniques = {str(unique["name"]) for unique in inspector.get_unique_constraints("users")}
                return tables, indexes | uniques

            return await connection.run_sync(read)
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    head = migrations.head_revision()
    assert head is not None
    migrations.upgrade(database_url)
    assert migrations.run_current_revision(database_url) == head
    migrations.downgrade(database_url, "base")
    assert migrations.run_current_revision(database_url) is None
    migrations.upgrade(database_url)
    assert migrations.run_current_revision(database_url) == head


async def test_the_schema_has_users_with_unique_username_and_email(database_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url)
    tables, names = await _tables_and_indexes(database_url)
    assert "users" in tables
    assert {"ix_users_role", "ix_users_status", "ix_users_created_at_id"} <= names
    assert any("username" in name for name in names)
    assert any("email" in name for name in names)


async def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(sa.text("PRAGMA journal_mode"))).scalar_one()
    finally:
        await engine.dispose()
    assert mode == "wal"


def test_migrations_match_the_tables_the_code_uses(database_url: str) -> None:
    """Autogenerate finds nothing to do: the migration and users/tables.py agree on every backend."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from py_app.audit import tables as _audit  # noqa: F401
    from py_app.auth import tables as _auth  # noqa: F401
    from py_app.infra import counters as _counters  # noqa: F401
    from py_app.infra import outbox as _outbox  # noqa: F401
    from py_app.infra.db import metadata
    from py_app.users import tables as _users  # noqa: F401

    migrations.upgrade(database_url)

    async def diff() -> list[object]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []
