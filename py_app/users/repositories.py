"""SQLAlchemy Core implementation of the users repository (lean queries: the hot path avoids the ORM)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from py_app.core.errors import Conflict
from py_app.users.models import Role, Status, User, UserQuery, normalize_email
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

    async def update(
        self, user_id: str, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> bool:
        condition = sa.and_(users.c.id == user_id, *(users.c[name] == value for name, value in (expect or {}).items()))
        try:
            async with self._connection.begin_nested():
                result = await self._connection.execute(users.update().where(condition).values(**changes))
        except IntegrityError:
            raise Conflict("A user with this username or email already exists.") from None
        return result.rowcount == 1

    async def delete(self, user_id: str) -> bool:
        result = await self._connection.execute(users.delete().where(users.c.id == user_id))
        return result.rowcount == 1

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        conditions = []
        if query.role is not None:
            conditions.append(users.c.role == query.role.value)
        if query.status is not None:
            conditions.append(users.c.status == query.status.value)
        if query.prefix:
            pattern = _escape_like(query.prefix) + "%"
            conditions.append(
                sa.or_(users.c.username.like(pattern, escape="\\"), users.c.email.like(pattern.lower(), escape="\\"))
            )
        where = sa.and_(sa.true(), *conditions)
        total = (
            await self._connection.execute(sa.select(sa.func.count()).select_from(users).where(where))
        ).scalar_one()
        rows = await self._connection.execute(
            sa.select(users)
            .where(where)
            .order_by(users.c.created_at, users.c.id)
            .limit(query.per_page)
            .offset(query.offset)
        )
        return [user for row in rows.mappings() if (user := _user(row)) is not None], int(total)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
