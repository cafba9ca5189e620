"""What the users services need: a repository and a unit of work, as Protocols."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from py_app.users.models import User


class UserRepository(Protocol):
    """Stores users. Lookups by username or email are case-insensitive."""

    async def add(self, user: User) -> None:
        """Insert a new user; raise Conflict when the username or email is taken."""

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_login(self, username_or_email: str) -> User | None:
        """The user whose username or (normalised) email matches."""

    async def count(self) -> int: ...


class UsersUnitOfWork(Protocol):
    """One transaction: changes are kept only when ``commit`` is called before leaving the block."""

    @property
    def users(self) -> UserRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class UsersUnitOfWorkFactory(Protocol):
    def __call__(self) -> UsersUnitOfWork: ...
