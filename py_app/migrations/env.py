"""Alembic environment: runs migrations over the service's own async engine factory."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from py_app.audit import tables as _audit_tables  # noqa: F401 - registers the tables on metadata
from py_app.auth import tables as _auth_tables  # noqa: F401
from py_app.infra import counters as _counters  # noqa: F401
from py_app.infra import outbox as _outbox  # noqa: F401
from py_app.infra.db import create_engine, metadata
from py_app.users import tables as _users_tables  # noqa: F401

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url, timeout=None)  # a schema change may take long: only connecting is bounded
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.attributes["database_url"], target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async(config.attributes["database_url"]))
