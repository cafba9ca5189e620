"""REST bodies for the audit log (msgspec Structs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec

from py_app.audit.models import AuditPage
from py_app.core.effects import AuditEvent

EXAMPLE_EVENT: dict[str, Any] = {
    "id": "6f1e2d3c-4b5a-4978-8c6d-5e4f3a2b1c0d",
    "at": "2026-12-01T10:15:00.123456Z",
    "event": "privilege_change",
    "actor_id": "9b7e6d5c-4a3b-4c2d-8e1f-0a9b8c7d6e5f",
    "target_id": "3f2c8a4e-5b1d-4c7a-9e2f-6a8b0c1d2e3f",
    "ip": "203.0.113.7",
    "details": {"role": "admin"},
}


class AuditEventOut(msgspec.Struct, frozen=True):
    id: str
    at: datetime
    event: str
    actor_id: str | None
    target_id: str | None
    ip: str
    details: dict[str, Any]

    example: ClassVar[dict[str, Any]] = EXAMPLE_EVENT

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(event.id, event.at, event.event, event.actor_id, event.target_id, event.ip, dict(event.details))


class AuditPageOut(msgspec.Struct, frozen=True):
    items: list[AuditEventOut]
    page: int
    per_page: int
    total: int
    total_pages: int

    example: ClassVar[dict[str, Any]] = {
        "items": [EXAMPLE_EVENT],
        "page": 1,
        "per_page": 50,
        "total": 1,
        "total_pages": 1,
    }

    @classmethod
    def of(cls, page: AuditPage) -> AuditPageOut:
        items = [AuditEventOut.of(event) for event in page.items]
        return cls(items, page.page, page.per_page, page.total, page.total_pages)
