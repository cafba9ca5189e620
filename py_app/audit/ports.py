"""The audit domain's ports: what it offers (reading the log) and what it needs (a store)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from py_app.audit.models import AuditPage, AuditQuery
from py_app.core.effects import AuditEvent
from py_app.core.identity import Principal


class AuditStore(Protocol):
    """The append-only log. Changes write their records through their own store's ``Effects``."""

    async def record(self, *events: AuditEvent) -> None:
        """Append events that change nothing else (a failed login, a lockout)."""

    async def search(self, query: AuditQuery) -> tuple[list[AuditEvent], int]:
        """One page, newest first (records of one instant by event name, then id), and the total."""

    async def prune(self, before: datetime) -> int:
        """Delete records older than ``before`` (the retention job); how many went."""


class AuditUseCases(Protocol):
    async def search(self, actor: Principal, query: AuditQuery) -> AuditPage:
        """Administrators read the log, paged, filtered by user and event."""
