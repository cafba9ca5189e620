"""SQLAlchemy Core implementation of the users repository (lean queries: the hot path avoids the ORM)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from py_app.core.errors import Conflict
from py_app.users.models import Role, Status, User, normalize_email
from py_app.users.tables import users


class SqlUserRepository:
    """Users in the ``users`` table, through one transaction's connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, user: User) -> None:
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(users.insert().values(**_row(user)))
        except IntegrityError:
            raise Conflict("A user with this username or email already exists.") from None

    async def get(self, user_id: str) -> User | None:
        result = await self._connection.execute(sa.select(users).where(users.c.id == user_id))
        return _user(result.mappings().first())

    async def get_by_login(self, username_or_email: str) -> User | None:
        column = users.c.email if "@" in username_or_email else users.c.username
        value = normalize_email(username_or_email) if "@" in username_or_email else username_or_email
        result = await self._connection.execute(sa.select(users).where(column == value))
        return _user(result.mappings().first())

    async def count(self) -> int:
        result = await self._connection.execute(sa.select(sa.func.count()).select_from(users))
        return int(result.scalar_one())


def _row(user: User) -> dict[str, Any]:
    return {name: getattr(user, name) for name in User.__slots__}


def _user(row: Any) -> User | None:
    if row is None:
        return None
    values = dict(row)
    values["role"] = Role(values["role"])
    values["status"] = Status(values["status"])
    values["is_verified"] = bool(values["is_verified"])
    return User(**values)
