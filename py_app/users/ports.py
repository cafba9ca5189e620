"""What the users services need: a repository and a unit of work, as Protocols."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from py_app.users.models import User, UserQuery


class UserRepository(Protocol):
    """Stores users. Lookups by username or email are case-insensitive."""

    async def add(self, user: User) -> None:
        """Insert a new user; raise Conflict when the username or email is taken."""

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_login(self, username_or_email: str) -> User | None:
        """The user whose username or (normalised) email matches."""

    async def count(self) -> int: ...

    async def update(
        self, user_id: str, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> bool:
        """Write only ``changes``, and only while every ``expect`` column still holds its value.

        False when no row matched (unknown id, or someone changed an expected column meanwhile):
        callers never write back a whole row read earlier, so concurrent changes are not lost.
        Raise Conflict when the new email is taken.
        """

    async def delete(self, user_id: str) -> bool: ...

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        """One page of users in a stable order (created_at, id), and the total matching the filters."""


class UserSessions(Protocol):
    """The part of session storage that account changes need."""

    async def revoke_for_user(self, user_id: str, now: datetime, keep: str | None = None) -> list[str]:
        """Revoke every live session of a user except ``keep``; return the revoked ids."""


class PrincipalCache(Protocol):
    async def forget_user(self, user_id: str) -> None:
        """Drop everything cached about a user's sessions (after a role, status or password change)."""


class UsersUnitOfWork(Protocol):
    """One transaction: changes are kept only when ``commit`` is called before leaving the block."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def sessions(self) -> UserSessions: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class UsersUnitOfWorkFactory(Protocol):
    def __call__(self) -> UsersUnitOfWork: ...
