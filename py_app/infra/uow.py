"""The SQL unit of work: one connection, one transaction, the repositories of every domain bound to it."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from py_app.auth.repositories import SqlSessionRepository
from py_app.core.errors import Unavailable
from py_app.users.repositories import SqlUserRepository

logger = logging.getLogger("arcana.db")


class SqlUnitOfWork:
    """Rolls back unless ``commit`` was called; satisfies every domain's unit-of-work Protocol."""

    users: SqlUserRepository
    sessions: SqlSessionRepository

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None

    async def __aenter__(self) -> Self:
        try:
            self._connection = await self._engine.connect()
            self._transaction = await self._connection.begin()
        except DBAPIError as exc:
            raise _unavailable(exc) from exc
        self.users = SqlUserRepository(self._connection)
        self.sessions = SqlSessionRepository(self._connection)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._connection is not None
        assert self._transaction is not None
        try:
            if self._transaction.is_active:
                await self._transaction.rollback()
        finally:
            await self._connection.close()
        if isinstance(exc, DBAPIError):  # integrity errors were mapped by the repositories already
            raise _unavailable(exc) from exc

    async def commit(self) -> None:
        assert self._transaction is not None
        await self._transaction.commit()


def _unavailable(exc: DBAPIError) -> Unavailable:
    """A database that is down, locked or deadlocked is a retryable 503, not a 500 with a trace."""
    logger.warning("database unavailable", extra={"error": type(exc.orig).__name__ if exc.orig else type(exc).__name__})
    return Unavailable("The database is busy or unavailable; try again.")
