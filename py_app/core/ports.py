"""Ports shared by every domain: what services need from the outside world, as Protocols."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from py_app.core.effects import AuditEvent, OutboxMessage


class Clock(Protocol):
    """The current time, injectable so tests can move it."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class PasswordHasher(Protocol):
    """Hashes and verifies passwords off the event loop; implementations bound concurrency."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, encoded: str, password: str) -> bool: ...

    def needs_rehash(self, encoded: str) -> bool: ...


class Outbox(Protocol):
    """Messages for the relay, published on their own (a change's own messages travel in its ``Effects``)."""

    async def publish(self, *messages: OutboxMessage, now: datetime) -> None: ...


class AuditRecorder(Protocol):
    """Security events that change nothing else (a failed login, a lockout), recorded on their own."""

    async def record(self, *events: AuditEvent) -> None: ...
