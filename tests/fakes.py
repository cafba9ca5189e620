"""Fakes for the ports (not mocks): small working implementations kept in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from py_app.core.errors import Conflict
from py_app.users.models import User, normalize_email


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


class FakeUnitOfWork:
    """Commits copy the working set into the committed store; leaving without commit discards it."""

    def __init__(self, store: InMemoryUsers) -> None:
        self._store = store
        self.users = InMemoryUsers()
        self.commits = 0

    async def __aenter__(self) -> Self:
        self.users.rows = dict(self._store.rows)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self._store.rows = dict(self.users.rows)
        self.commits += 1
