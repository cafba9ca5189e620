"""Audit queries and pages. The event itself is the shared kernel's ``AuditEvent``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from py_app.core.effects import AuditEvent

DEFAULT_RETENTION_DAYS = 400


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters and one page of the audit log, newest first."""

    page: int = 1
    per_page: int = 50
    user_id: str | None = None  # events where this account acted or was acted on
    event: str | None = None
    since: datetime | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[AuditEvent]
    page: int
    per_page: int
    total: int

    @property
    def total_pages(self) -> int:
        return (self.total + self.per_page - 1) // self.per_page
