"""The append-only audit log. Rows are written by other stores inside their own transactions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from py_app.core.effects import AuditEvent
from py_app.infra.db import MYSQL_TABLE_ARGS, UTCDateTime, metadata

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("actor_id", sa.String(36), nullable=True),
    sa.Column("target_id", sa.String(36), nullable=True),
    sa.Column("ip", sa.String(45), nullable=False, server_default=""),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index("ix_audit_events_at_id", "at", "id"),
    sa.Index("ix_audit_events_target_id_at", "target_id", "at"),
    sa.Index("ix_audit_events_event_at", "event", "at"),
    **MYSQL_TABLE_ARGS,
)


def audit_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "event": event.event,
        "actor_id": event.actor_id,
        "target_id": event.target_id,
        "ip": event.ip[:45],
        "details": dict(event.details),
    }


def audit_from_row(row: Any) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        at=row["at"],
        event=row["event"],
        actor_id=row["actor_id"],
        target_id=row["target_id"],
        ip=row["ip"],
        details=row["details"] or {},
    )
