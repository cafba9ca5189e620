"""Run Alembic programmatically, so `python -m py_app migrate` needs no alembic.ini."""

from __future__ import annotations

import asyncio
import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from py_app.infra.db import create_engine


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "py_app:migrations")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to ``revision``. Runs its own event loop: call it from sync code."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


@functools.cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


@functools.cache
def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config("")).walk_revisions())


def read_revision(connection: Connection) -> str | None:
    """The revision a database is at (None when never migrated), read on a synchronous connection."""
    return MigrationContext.configure(connection).get_current_revision()


def schema_problem(current: str | None, head: str | None, known: frozenset[str]) -> str | None:
    """Why this version cannot work on a schema at ``current``, or None when it can.

    A revision this version does not know was made by a later release: its migrations add before they
    remove, so this version keeps working on it during a rolling upgrade.
    """
    if current == head or (current is not None and current not in known):
        return None
    if current is None:
        return "the database is not migrated"
    return f"the database schema is at revision {current}, this version needs {head}"


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read_revision)
    finally:
        await engine.dispose()


def run_current_revision(database_url: str) -> str | None:
    return asyncio.run(current_revision(database_url))


def run_schema_problem(database_url: str) -> str | None:
    """``schema_problem`` for the database at ``database_url`` (raises when it cannot be reached)."""
    return schema_problem(run_current_revision(database_url), head_revision(), known_revisions())
