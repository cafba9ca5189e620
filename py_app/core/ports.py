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


class Metrics(Protocol):
    """What the service counts for operators (Prometheus, or nothing). Every label value passed here comes
    from a small fixed set (a route template, a method name, a result word), never a user id, an email,
    a token or a raw path: label values are kept forever and shown to whoever reads the metrics."""

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One REST request answered: ``route`` is the template (``/api/v1/users/{user_id:str}``)."""

    def rpc_call(self, service: str, method: str, code: str, seconds: float) -> None:
        """One gRPC call answered with status ``code`` (``OK``, ``UNAUTHENTICATED`` ...)."""

    def login(self, result: str) -> None:
        """A login attempt: ``success``, ``failure`` (wrong password, unknown or unusable account), ``limited``."""

    def lockout(self) -> None:
        """An account was locked after too many failed logins."""

    def token_issued(self, grant: str) -> None:
        """An access token was issued: on ``login``, ``register`` or ``refresh``."""

    def refresh(self, result: str) -> None:
        """A refresh: ``rotated``, ``replayed`` (within the grace), ``reused``, ``invalid``, ``limited``."""

    def refresh_reuse(self) -> None:
        """A spent refresh token came back after its grace: its session was ended."""

    def token_verification(self, result: str, transport: str) -> None:
        """An access token checked: ``valid``, ``invalid``, ``session_ended``, ``unverified``; ``rest``, ``grpc``."""

    def rate_limited(self, policy: str) -> None:
        """A request refused by a rate limit or a login lock, by policy name (``login_account`` ...)."""

    def password_hash(self, operation: str, seconds: float) -> None:
        """One argon2 ``hash`` or ``verify``, timed including the wait for a hashing slot."""

    def cache_lookup(self, cache: str, hit: bool) -> None:
        """One lookup in a cache (``session``)."""

    def pool_checked_out(self, delta: int) -> None:
        """Database connections handed out (+1) or given back (-1)."""

    def pool_size(self, size: int) -> None:
        """This process's database pool size (connections kept open)."""

    def counters_fallback(self, degraded: bool) -> None:
        """Redis was configured but failed (``True``: this call counted in-process) or answered again (``False``)."""


class NoMetrics:
    """Records nothing: the choice when no metrics port is configured (no work on the request path)."""

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        return None

    def rpc_call(self, service: str, method: str, code: str, seconds: float) -> None:
        return None

    def login(self, result: str) -> None:
        return None

    def lockout(self) -> None:
        return None

    def token_issued(self, grant: str) -> None:
        return None

    def refresh(self, result: str) -> None:
        return None

    def refresh_reuse(self) -> None:
        return None

    def token_verification(self, result: str, transport: str) -> None:
        return None

    def rate_limited(self, policy: str) -> None:
        return None

    def password_hash(self, operation: str, seconds: float) -> None:
        return None

    def cache_lookup(self, cache: str, hit: bool) -> None:
        return None

    def pool_checked_out(self, delta: int) -> None:
        return None

    def pool_size(self, size: int) -> None:
        return None

    def counters_fallback(self, degraded: bool) -> None:
        return None
