"""SQLAlchemy Core implementation of the user store (lean queries: the hot path avoids the ORM).

Each method is one atomic operation with its own transaction (``infra.db.transaction``); writes carry
only the columns they change, guarded by what the caller verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.auth.repositories import end_reset_tokens, end_user_sessions, record_login
from py_app.core.effects import NO_EFFECTS, Effects
from py_app.core.errors import Conflict
from py_app.infra.db import Reader, Writer, first, read_first, reading, transaction
from py_app.infra.outbox import write_effects
from py_app.users.models import (
    LAST_ADMIN,
    LoginWrite,
    PasswordChange,
    Role,
    Status,
    User,
    UserChanges,
    UserQuery,
    normalize_email,
    username_key,
)
from py_app.users.tables import user_from_row, user_row, users

TAKEN = "A user with this username or email already exists."
# Built once: constructing a statement and its cache key costs several times what executing it does.
_BY_ID = sa.select(users).where(users.c.id == sa.bindparam("user_id"))


# Every login's read, built once (building a statement costs more than running it on SQLite).
_BY_EMAIL = sa.select(users).where(users.c.email == sa.bindparam("login"))
_BY_USERNAME = sa.select(users).where(users.c.username_key == sa.bindparam("login"))


class SqlUserStore:
    """Accounts in the ``users`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, user: User, effects: Effects = NO_EFFECTS) -> None:
        async with transaction(self._engine) as connection:
            try:
                await connection.execute(users.insert().values(**user_row(user)))
            except IntegrityError:
                raise Conflict(TAKEN) from None
            await write_effects(connection, effects, user.created_at)

    async def get(self, user_id: str) -> User | None:
        return user_from_row(await read_first(self._engine, _BY_ID, {"user_id": user_id}))

    async def credentials(self, user_id: str) -> User | None:
        return await self.get(user_id)

    async def find_by_login(self, username_or_email: str) -> User | None:
        if "@" in username_or_email:
            query, value = _BY_EMAIL, normalize_email(username_or_email)
        else:
            key = username_key(username_or_email)
            if key is None:
                return None
            query, value = _BY_USERNAME, key
        return user_from_row(await read_first(self._engine, query, {"login": value}))

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        conditions = []
        if query.role is not None:
            conditions.append(users.c.role == query.role.value)
        if query.status is not None:
            conditions.append(users.c.status == query.status.value)
        if query.exclude_role is not None:
            conditions.append(users.c.role != query.exclude_role.value)
        if query.prefix:
            pattern = _escape_like(query.prefix) + "%"
            conditions.append(
                sa.or_(
                    users.c.username_key.like(pattern.lower(), escape="\\") if query.prefix.isascii() else sa.false(),
                    users.c.email.like(pattern.lower(), escape="\\"),
                )
            )
        where = sa.and_(sa.true(), *conditions)
        page = sa.select(users).where(where).order_by(users.c.created_at, users.c.id)
        async with reading(self._engine) as connection:  # one snapshot: the total matches the page
            total = (await connection.execute(sa.select(sa.func.count()).select_from(users).where(where))).scalar_one()
            rows = await connection.execute(page.limit(query.per_page).offset(query.offset))
            return [user for row in rows.mappings() if (user := user_from_row(row)) is not None], int(total)

    async def update(
        self, user_id: str, changes: UserChanges, now: datetime, effects: Effects = NO_EFFECTS
    ) -> User | None:
        async with transaction(self._engine) as connection:
            if changes.may_remove_an_admin:
                await _keep_an_admin(connection, user_id)
            if not await _write(connection, user_id, {**changes.values(), "updated_at": now}):
                return None
            if changes.ends_sessions:
                await end_user_sessions(connection, user_id, now)
            await write_effects(connection, effects, now)
            return await _get(connection, user_id)

    async def change_password(self, change: PasswordChange, effects: Effects = NO_EFFECTS) -> bool:
        async with transaction(self._engine) as connection:
            values = {"password_hash": change.new_hash, "updated_at": change.now}
            if not await _write(connection, change.user_id, values, expect={"password_hash": change.expected_hash}):
                return False
            await end_user_sessions(connection, change.user_id, change.now, keep=change.keep_session)
            await end_reset_tokens(connection, change.user_id, change.now)
            await write_effects(connection, effects, change.now)
            return True

    async def delete(self, user_id: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        async with transaction(self._engine) as connection:  # sessions and tokens go with the row (CASCADE)
            await _keep_an_admin(connection, user_id)
            result = await connection.execute(users.delete().where(users.c.id == user_id))
            if result.rowcount != 1:
                return False
            await write_effects(connection, effects, now)
            return True


class SqlAccountWrites:
    """The account writes authentication causes, on the ``users`` table, each with its ``effects``: what the
    users service does for the auth service in the microservices mode (``users.ports.AccountWrites``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record_login(self, login: LoginWrite, effects: Effects = NO_EFFECTS) -> bool:
        async with transaction(self._engine) as connection:
            if not await record_login(connection, login):
                return False
            await write_effects(connection, effects, login.now)
            return True

    async def set_password(self, user_id: str, new_hash: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        async with transaction(self._engine) as connection:
            if not await _write(connection, user_id, {"password_hash": new_hash, "updated_at": now}):
                return False
            await end_user_sessions(connection, user_id, now)
            await end_reset_tokens(connection, user_id, now)
            await write_effects(connection, effects, now)
            return True

    async def mark_verified(
        self, user_id: str, email: str, now: datetime, effects: Effects = NO_EFFECTS
    ) -> User | None:
        async with transaction(self._engine) as connection:
            values = {"is_verified": True, "updated_at": now}
            if not await _write(connection, user_id, values, expect={"email": email}):
                return None
            await write_effects(connection, effects, now)
            return await _get(connection, user_id)


async def _keep_an_admin(connection: Writer, user_id: str) -> None:
    """Refuse to remove the only active administrator. The active admins' rows stay locked until the
    write commits (SQLite's write lock is already held), so a concurrent demotion waits, then sees this one."""
    active = sa.and_(users.c.role == Role.ADMIN.value, users.c.status == Status.ACTIVE.value)
    admins = [row.id for row in await connection.execute(sa.select(users.c.id).where(active).with_for_update())]
    if admins == [user_id]:
        raise Conflict(LAST_ADMIN)


async def _get(connection: Reader, user_id: str) -> User | None:
    return user_from_row(await first(connection, _BY_ID, {"user_id": user_id}))


async def _write(
    connection: Writer, user_id: str, values: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
) -> bool:
    """UPDATE only ``values``, only while every ``expect`` column still holds its value."""
    condition = sa.and_(users.c.id == user_id, *(users.c[name] == value for name, value in (expect or {}).items()))
    try:
        result = await connection.execute(users.update().where(condition).values(**values))
    except IntegrityError:
        raise Conflict(TAKEN) from None
    return result.rowcount == 1


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
