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


class Counters(Protocol):
    """Atomic counters in fixed windows and timed holds: what rate limits and lockouts count with.

    Every method is one atomic operation, so concurrent callers in any number of processes that share
    the adapter (Redis, the database) can never both get under a limit that only one of them fits.
    """

    async def hit(self, key: str, window: int, now: datetime) -> tuple[int, int]:
        """Count one more in the current ``window``-second window of ``key``: (count, seconds left)."""

    async def release(self, key: str) -> None:
        """Take back one hit (an attempt that turned out not to count)."""

    async def reset(self, key: str) -> None: ...

    async def hold(self, key: str, seconds: int, now: datetime) -> None:
        """Set a hold (a lock) on ``key`` for ``seconds``."""

    async def held(self, key: str, now: datetime) -> int:
        """Seconds left on ``key``'s hold; 0 when there is none."""
