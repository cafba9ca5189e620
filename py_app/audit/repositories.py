"""SQLAlchemy Core implementation of the audit store."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.audit.models import AuditQuery
from py_app.audit.tables import audit_events, audit_from_row, audit_row
from py_app.core.effects import AuditEvent
from py_app.infra.db import reading, transaction


class SqlAuditStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, *events: AuditEvent) -> None:
        if events:
            async with transaction(self._engine) as connection:
                await connection.execute(audit_events.insert(), [audit_row(event) for event in events])

    async def search(self, query: AuditQuery) -> tuple[list[AuditEvent], int]:
        conditions = []
        if query.user_id:
            conditions.append(
                sa.or_(audit_events.c.actor_id == query.user_id, audit_events.c.target_id == query.user_id)
            )
        if query.event:
            conditions.append(audit_events.c.event == query.event)
        if query.since is not None:
            conditions.append(audit_events.c.at >= query.since)
        where = sa.and_(sa.true(), *conditions)
        # Newest first; records of one instant (one transaction's) in a fixed order: by event, then id.
        newest = (audit_events.c.at.desc(), audit_events.c.event, audit_events.c.id)
        page = sa.select(audit_events).where(where).order_by(*newest)
        async with reading(self._engine) as connection:
            total = (
                await connection.execute(sa.select(sa.func.count()).select_from(audit_events).where(where))
            ).scalar_one()
            rows = await connection.execute(page.limit(query.per_page).offset(query.offset))
            return [audit_from_row(row) for row in rows.mappings()], int(total)

    async def prune(self, before: datetime) -> int:
        async with transaction(self._engine) as connection:
            return int((await connection.execute(audit_events.delete().where(audit_events.c.at < before))).rowcount)
