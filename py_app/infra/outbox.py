"""The transactional outbox: messages written with the state change that causes them, relayed later.

``write_effects`` puts a change's outbox messages and audit records into the caller's transaction.
``SqlOutbox`` publishes messages on their own, and hands due ones to relays under a lease: a relay
claims a batch (``FOR UPDATE SKIP LOCKED`` on MariaDB; SQLite's write lock serialises claims), so two
relays never hold the same message, and a message whose relay died is claimed again once its lease
runs out. A message that keeps failing is marked dead after ``MAX_ATTEMPTS``, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.audit.tables import audit_events, audit_row
from py_app.core.effects import Effects, OutboxMessage
from py_app.infra.db import MYSQL_TABLE_ARGS, UTCDateTime, Writer, metadata, reading, run, transaction

MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS, LAST_RETRY_SECONDS = 5, 3600

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("available_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.String(16), nullable=False),  # pending | done | dead
    sa.Column("claim", sa.String(36), nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.String(200), nullable=False, server_default=""),
    sa.Column("done_at", UTCDateTime, nullable=True),
    sa.Index("ix_outbox_status_available_at", "status", "available_at"),
    **MYSQL_TABLE_ARGS,
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message a relay holds under its lease."""

    id: str
    topic: str
    payload: Mapping[str, Any]
    attempts: int


class OutboxStore(Protocol):
    """The outbox as the relay and the services use it (``SqlOutbox``, or a client of the tier that has it)."""

    async def publish(self, *messages: OutboxMessage, now: datetime) -> None: ...

    async def claim(
        self, claim: str, now: datetime, lease: timedelta, limit: int, topics: frozenset[str] | None = None
    ) -> list[Claimed]:
        """Lease up to ``limit`` due messages (of ``topics``, when given) to the relay named ``claim``."""

    async def done(self, message_id: str, claim: str, now: datetime) -> None: ...

    async def failed(self, message: Claimed, claim: str, now: datetime, error: str) -> bool:
        """Count a failed attempt: retry later with back-off, or mark the message dead. True when dead."""

    async def waiting(self, topic: str) -> int: ...

    async def prune(self, before: datetime) -> int: ...


# Built once: every write with effects runs them (db.run prepares statements that are module constants).
_NEW_MESSAGE = outbox.insert()
_NEW_EVENT = audit_events.insert()


async def write_effects(connection: Writer, effects: Effects, now: datetime) -> None:
    """Write ``effects`` inside the caller's transaction (so they commit or roll back with it)."""
    if effects.messages:
        await run(connection, _NEW_MESSAGE, [_message_row(message, now) for message in effects.messages])
    if effects.audit:
        await run(connection, _NEW_EVENT, [audit_row(event) for event in effects.audit])


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off: 5 s, 10 s, 20 s ... at most an hour."""
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), LAST_RETRY_SECONDS))


class SqlOutbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def publish(self, *messages: OutboxMessage, now: datetime) -> None:
        async with transaction(self._engine) as connection:
            await write_effects(connection, Effects(messages=messages), now)

    async def claim(
        self, claim: str, now: datetime, lease: timedelta, limit: int, topics: frozenset[str] | None = None
    ) -> list[Claimed]:
        """Lease up to ``limit`` due messages (of ``topics``, when given) to the relay named ``claim``."""
        due = sa.and_(
            outbox.c.status == "pending",
            outbox.c.available_at <= now,
            sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
        )
        if topics is not None:
            due = sa.and_(due, outbox.c.topic.in_(sorted(topics)))
        query = (
            sa.select(outbox.c.id, outbox.c.topic, outbox.c.payload, outbox.c.attempts)
            .where(due)
            .order_by(outbox.c.available_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with transaction(self._engine, queue=True) as connection:
            rows = (await connection.execute(query)).all()
            if rows:
                await connection.execute(
                    outbox.update()
                    .where(outbox.c.id.in_([row.id for row in rows]))
                    .values(claim=claim, claimed_until=now + lease)
                )
        return [Claimed(row.id, row.topic, row.payload, row.attempts) for row in rows]

    async def done(self, message_id: str, claim: str, now: datetime) -> None:
        async with transaction(self._engine, queue=True) as connection:
            await connection.execute(
                outbox.update()
                .where(outbox.c.id == message_id, outbox.c.claim == claim)
                .values(status="done", done_at=now, claim=None, claimed_until=None)
            )

    async def failed(self, message: Claimed, claim: str, now: datetime, error: str) -> bool:
        """Count a failed attempt: retry later with back-off, or mark the message dead. True when dead."""
        attempts = message.attempts + 1
        dead = attempts >= MAX_ATTEMPTS
        async with transaction(self._engine, queue=True) as connection:
            await connection.execute(
                outbox.update()
                .where(outbox.c.id == message.id, outbox.c.claim == claim)
                .values(
                    attempts=attempts,
                    status="dead" if dead else "pending",
                    available_at=now + retry_delay(attempts),
                    claim=None,
                    claimed_until=None,
                    last_error=error[:200],
                )
            )
        return dead

    async def settle(self, message_id: str, now: datetime) -> None:
        """Mark a pending message delivered by its writer (no relay holds it): the relay skips it."""
        async with transaction(self._engine, queue=True) as connection:
            await connection.execute(
                outbox.update()
                .where(outbox.c.id == message_id, outbox.c.status == "pending", outbox.c.claim.is_(None))
                .values(status="done", done_at=now)
            )

    async def waiting(self, topic: str) -> int:
        """How many messages of ``topic`` wait (for a relay that can deliver them)."""
        pending = sa.and_(outbox.c.topic == topic, outbox.c.status == "pending")
        async with reading(self._engine) as connection:
            query = sa.select(sa.func.count()).select_from(outbox).where(pending)
            return int((await connection.execute(query)).scalar_one())

    async def prune(self, before: datetime) -> int:
        """Forget delivered messages older than ``before`` (dead ones stay for an operator to see)."""
        async with transaction(self._engine, queue=True) as connection:
            result = await connection.execute(
                outbox.delete().where(outbox.c.status == "done", outbox.c.done_at < before)
            )
            return int(result.rowcount)


def _message_row(message: OutboxMessage, now: datetime) -> dict[str, Any]:
    return {
        "id": message.id,
        "topic": message.topic,
        "payload": dict(message.payload),
        "created_at": now,
        "available_at": now + timedelta(seconds=message.not_before),
        "attempts": 0,
        "status": "pending",
        "last_error": "",
    }
