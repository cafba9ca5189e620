"""SQLAlchemy Core implementation of the session repository."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from py_app.auth.models import Session
from py_app.auth.ports import RefreshRecord, SessionState
from py_app.auth.tables import refresh_tokens, sessions
from py_app.users.models import Role, Status
from py_app.users.tables import users


class SqlSessionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, session: Session, refresh_digest: str) -> None:
        values = {name: getattr(session, name) for name in Session.__slots__}
        await self._connection.execute(sessions.insert().values(**values))
        await self._connection.execute(
            refresh_tokens.insert().values(digest=refresh_digest, session_id=session.id, created_at=session.created_at)
        )

    async def spend(self, digest: str, now: datetime) -> bool:
        # A conditional UPDATE is the compare-and-set: the database lets exactly one caller flip used_at.
        result = await self._connection.execute(
            refresh_tokens.update()
            .where(refresh_tokens.c.digest == digest, refresh_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        return result.rowcount == 1

    async def find_refresh(self, digest: str) -> RefreshRecord | None:
        row = (
            await self._connection.execute(
                sa.select(refresh_tokens.c.session_id, refresh_tokens.c.used_at).where(
                    refresh_tokens.c.digest == digest
                )
            )
        ).first()
        return None if row is None else RefreshRecord(session_id=row.session_id, used_at=row.used_at)

    async def add_refresh(self, session_id: str, digest: str, now: datetime) -> None:
        await self._connection.execute(
            refresh_tokens.insert().values(digest=digest, session_id=session_id, created_at=now)
        )
        await self._connection.execute(sessions.update().where(sessions.c.id == session_id).values(last_used_at=now))

    async def get(self, session_id: str) -> Session | None:
        row = (
            (await self._connection.execute(sa.select(sessions).where(sessions.c.id == session_id))).mappings().first()
        )
        return None if row is None else _session(row)

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        query = (
            sa.select(sessions, users.c.role.label("user_role"), users.c.status.label("user_status"))
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id == session_id, sessions.c.user_id == user_id)
        )
        row = (await self._connection.execute(query)).mappings().first()
        if row is None:
            return None
        values = dict(row)
        role, status = Role(values.pop("user_role")), Status(values.pop("user_status"))
        return SessionState(session=_session(values), role=role, status=status)

    async def list_for_user(self, user_id: str) -> list[Session]:
        query = (
            sa.select(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .order_by(sessions.c.created_at.desc(), sessions.c.id)
        )
        return [_session(row) for row in (await self._connection.execute(query)).mappings()]

    async def revoke(self, session_id: str, now: datetime, user_id: str | None = None) -> bool:
        condition = sa.and_(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        if user_id is not None:
            condition = sa.and_(condition, sessions.c.user_id == user_id)
        result = await self._connection.execute(sessions.update().where(condition).values(revoked_at=now))
        return result.rowcount == 1

    async def revoke_for_user(self, user_id: str, now: datetime, keep: str | None = None) -> list[str]:
        condition = sa.and_(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        if keep is not None:
            condition = sa.and_(condition, sessions.c.id != keep)
        # Write first (SQLite takes its write lock at the first write); then read what this write revoked.
        await self._connection.execute(sessions.update().where(condition).values(revoked_at=now))
        query = sa.select(sessions.c.id).where(sessions.c.user_id == user_id, sessions.c.revoked_at == now)
        return [row.id for row in await self._connection.execute(query)]


def _session(row: Any) -> Session:
    return Session(**{name: row[name] for name in Session.__slots__})
