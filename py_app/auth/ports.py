"""What the auth services need: session storage, access tokens and a session cache, as Protocols."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from py_app.auth.models import Session
from py_app.core.identity import Principal
from py_app.users.models import Role, Status
from py_app.users.ports import UserSessions, UsersUnitOfWork


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A stored refresh-token digest: which session it belongs to and when it was spent."""

    session_id: str
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionState:
    """What an authenticated request needs to know, read in one query."""

    session: Session
    role: Role
    status: Status


class SessionRepository(UserSessions, Protocol):
    async def add(self, session: Session, refresh_digest: str) -> None:
        """Store a new session with its first refresh token."""

    async def spend(self, digest: str, now: datetime) -> bool:
        """Mark an unspent refresh token spent, atomically; False when it was unknown or already spent.

        Implementations make this the transaction's first write, so two concurrent refreshes of one
        token cannot both succeed (the family never forks).
        """

    async def find_refresh(self, digest: str) -> RefreshRecord | None: ...

    async def add_refresh(self, session_id: str, digest: str, now: datetime) -> None:
        """Store the next refresh token of a session and mark the session used at ``now``."""

    async def get(self, session_id: str) -> Session | None: ...

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        """The session joined with its user's role and status."""

    async def list_for_user(self, user_id: str) -> list[Session]:
        """Unrevoked sessions, newest first."""

    async def revoke(self, session_id: str, now: datetime, user_id: str | None = None) -> bool:
        """End a live session (of ``user_id``, when given); False when there was none to end."""


class AuthUnitOfWork(UsersUnitOfWork, Protocol):
    @property
    def sessions(self) -> SessionRepository: ...


class AuthUnitOfWorkFactory(Protocol):
    def __call__(self) -> AuthUnitOfWork: ...


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    role: str
    jti: str
    expires_at: int


class AccessTokens(Protocol):
    """Issues and verifies short-lived signed access tokens."""

    ttl: int

    def issue(self, *, user_id: str, session_id: str, role: str, now: datetime) -> str: ...

    def verify(self, token: str, now: datetime) -> AccessClaims:
        """Raise Unauthenticated when the token is not valid now."""


class SessionCache(Protocol):
    """Recently checked live sessions, so an authenticated request rarely reads the database.

    Every revocation, role or status change invalidates; an adapter is only wired where that
    invalidation reaches every process (in-process with one worker, Redis with many).
    """

    async def get(self, session_id: str) -> Principal | None: ...

    def generation(self) -> int:
        """A counter every forget advances: read it before a database read, hand it to ``put``."""

    async def put(self, principal: Principal, generation: int) -> None:
        """Cache the principal unless something was forgotten since ``generation`` (it may be stale)."""

    async def forget(self, session_ids: list[str]) -> None: ...

    async def forget_user(self, user_id: str) -> None: ...
