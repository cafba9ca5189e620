"""Fakes for the ports (not mocks): small working implementations kept in memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from py_app.auth.models import Session
from py_app.auth.ports import AccessClaims, RefreshRecord, SessionState
from py_app.core.errors import Conflict, Unauthenticated
from py_app.users.models import User, UserQuery, normalize_email


@dataclass
class FixedClock:
    current: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class PlainHasher:
    """Reversible 'hashing' for service tests: proves the service hashes and verifies, at no cost."""

    async def hash(self, password: str) -> str:
        return f"plain${password}"

    async def verify(self, encoded: str, password: str) -> bool:
        return encoded == f"plain${password}"

    def needs_rehash(self, encoded: str) -> bool:
        return False


class InMemoryUsers:
    def __init__(self) -> None:
        self.rows: dict[str, User] = {}

    async def add(self, user: User) -> None:
        for existing in self.rows.values():
            if existing.username.lower() == user.username.lower() or existing.email == user.email:
                raise Conflict("A user with this username or email already exists.")
        self.rows[user.id] = user

    async def get(self, user_id: str) -> User | None:
        return self.rows.get(user_id)

    async def get_by_login(self, username_or_email: str) -> User | None:
        key = normalize_email(username_or_email) if "@" in username_or_email else username_or_email.lower()
        for user in self.rows.values():
            if key in (user.email, user.username.lower()):
                return user
        return None

    async def count(self) -> int:
        return len(self.rows)

    async def update(
        self, user_id: str, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> bool:
        user = self.rows.get(user_id)
        if user is None or any(getattr(user, name) != value for name, value in (expect or {}).items()):
            return False
        email = changes.get("email")
        if email is not None and any(other.id != user_id and other.email == email for other in self.rows.values()):
            raise Conflict("A user with this username or email already exists.")
        self.rows[user_id] = replace(user, **changes)
        return True

    async def delete(self, user_id: str) -> bool:
        return self.rows.pop(user_id, None) is not None

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        found = sorted(
            (
                user
                for user in self.rows.values()
                if (query.role is None or user.role is query.role)
                and (query.status is None or user.status is query.status)
                and (
                    not query.prefix
                    or user.username.lower().startswith(query.prefix.lower())
                    or user.email.startswith(query.prefix.lower())
                )
            ),
            key=lambda user: (user.created_at, user.id),
        )
        return found[query.offset : query.offset + query.per_page], len(found)


class InMemorySessions:
    def __init__(self) -> None:
        self.rows: dict[str, Session] = {}
        self.tokens: dict[str, RefreshRecord] = {}

    async def add(self, session: Session, refresh_digest: str) -> None:
        self.rows[session.id] = session
        self.tokens[refresh_digest] = RefreshRecord(session.id, None)

    async def spend(self, digest: str, now: datetime) -> bool:
        record = self.tokens.get(digest)
        if record is None or record.used_at is not None:
            return False
        self.tokens[digest] = RefreshRecord(record.session_id, now)
        return True

    async def find_refresh(self, digest: str) -> RefreshRecord | None:
        return self.tokens.get(digest)

    async def add_refresh(self, session_id: str, digest: str, now: datetime) -> None:
        self.tokens[digest] = RefreshRecord(session_id, None)
        self.rows[session_id] = replace(self.rows[session_id], last_used_at=now)

    async def get(self, session_id: str) -> Session | None:
        return self.rows.get(session_id)

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        session = self.rows.get(session_id)
        user = self.users.rows.get(user_id) if session else None
        if session is None or user is None or session.user_id != user_id:
            return None
        return SessionState(session, user.role, user.status)

    async def list_for_user(self, user_id: str) -> list[Session]:
        found = [s for s in self.rows.values() if s.user_id == user_id and s.revoked_at is None]
        return sorted(found, key=lambda s: s.created_at, reverse=True)

    async def revoke(self, session_id: str, now: datetime, user_id: str | None = None) -> bool:
        session = self.rows.get(session_id)
        if session is None or session.revoked_at is not None or user_id not in (None, session.user_id):
            return False
        self.rows[session_id] = replace(session, revoked_at=now)
        return True

    async def revoke_for_user(self, user_id: str, now: datetime, keep: str | None = None) -> list[str]:
        ids = [s.id for s in self.rows.values() if s.user_id == user_id and s.revoked_at is None and s.id != keep]
        for session_id in ids:
            await self.revoke(session_id, now)
        return ids


@dataclass
class Store:
    """The committed state every unit of work starts from."""

    users: InMemoryUsers = field(default_factory=InMemoryUsers)
    sessions: InMemorySessions = field(default_factory=InMemorySessions)


class FakeUnitOfWork:
    """Commits copy the working set into the committed store; leaving without commit discards it."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.users = InMemoryUsers()
        self.sessions = InMemorySessions()
        self.commits = 0

    async def __aenter__(self) -> Self:
        self.users.rows = dict(self._store.users.rows)
        self.sessions.rows = dict(self._store.sessions.rows)
        self.sessions.tokens = dict(self._store.sessions.tokens)
        self.sessions.users = self.users
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self._store.users.rows = dict(self.users.rows)
        self._store.sessions.rows = dict(self.sessions.rows)
        self._store.sessions.tokens = dict(self.sessions.tokens)
        self.commits += 1


class FakeTokens:
    """Readable 'tokens' that carry their claims, with a real expiry check."""

    ttl = 900

    def issue(self, *, user_id: str, session_id: str, role: str, now: datetime) -> str:
        return f"{user_id}|{session_id}|{role}|{int(now.timestamp()) + self.ttl}"

    def verify(self, token: str, now: datetime) -> AccessClaims:
        try:
            user_id, session_id, role, exp = token.split("|")
        except ValueError:
            raise Unauthenticated("bad token") from None
        if now.timestamp() >= int(exp):
            raise Unauthenticated("expired")
        return AccessClaims(user_id, session_id, role, "jti", int(exp))
