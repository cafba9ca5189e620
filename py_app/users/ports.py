"""The users domain's ports: what it offers (its use cases) and what it needs (a store, a cache).

Every store method is one atomic operation: the adapter opens and ends its own transaction, so a
store can live in this process or behind a gRPC client in another without holding a transaction
across the network. Arguments and results are plain frozen values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from py_app.core.effects import NO_EFFECTS, Effects
from py_app.core.identity import Principal
from py_app.users.models import LoginWrite, NewUser, Page, PasswordChange, Role, Status, User, UserChanges, UserQuery


class UserStore(Protocol):
    """Stores accounts. Lookups by username or email are case-insensitive."""

    async def add(self, user: User, effects: Effects = NO_EFFECTS) -> None:
        """Insert a new user and ``effects`` in one transaction; Conflict when the username or email is taken."""

    async def get(self, user_id: str) -> User | None:
        """The user by id, for reading. A cache may serve it without the password hash (``password_hash``
        is then ""): a password check starts from ``credentials``."""

    async def credentials(self, user_id: str) -> User | None:
        """The user by id as the database has it now, password hash included (never served from a cache)."""

    async def find_by_login(self, username_or_email: str) -> User | None:
        """The user whose username or (normalised) email matches."""

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        """One page of users in a stable order (created_at, id), and the total matching the filters."""

    async def update(
        self, user_id: str, changes: UserChanges, now: datetime, effects: Effects = NO_EFFECTS
    ) -> User | None:
        """Write only the fields ``changes`` sets, and return the user as stored afterwards.

        None when there is no such user. When ``changes.ends_sessions``, every session of the user
        ends in the same write. Raise Conflict when the new email is taken, or when the change would
        leave no active administrator (checked in the same write: two admins demoting each other at
        once leave one).
        """

    async def change_password(self, change: PasswordChange, effects: Effects = NO_EFFECTS) -> bool:
        """Apply ``change`` unless the stored hash is no longer ``change.expected_hash`` (then False).

        Every unused password-reset token of the user dies with it.
        """

    async def delete(self, user_id: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        """Remove the user and end their sessions; False when there was no such user.

        Raise Conflict when the user is the last active administrator (checked in the same write).
        """


class AccountWrites(Protocol):
    """The account writes that authentication causes, done by whoever owns the accounts (the users service in
    the microservices mode). Each is one atomic operation, guarded as the monolith guards it."""

    async def record_login(self, login: LoginWrite) -> bool:
        """Record a login (its time, a rehash) while the account still has ``login.verified_hash`` and is active;
        False, and nothing written, when it no longer does."""

    async def set_password(self, user_id: str, new_hash: str, now: datetime) -> bool:
        """A password reset's new hash; every session of the account ends. False when there is no such account."""

    async def mark_verified(self, user_id: str, email: str, now: datetime) -> User | None:
        """Mark the account's email verified while it is still ``email``; the account after, or None."""


class PrincipalCache(Protocol):
    """The part of the session cache that account changes need."""

    async def forget_user(self, user_id: str) -> None:
        """Drop everything cached about a user's sessions (after a role, status or password change)."""


class UserUseCases(Protocol):
    """The users domain as transports and other services see it, in this process or behind gRPC."""

    async def create(self, new: NewUser, *, by: str | None = None, ip: str = "") -> User:
        """Validate, hash and store a new account (``by``: who created it, for the audit log); Conflict
        when the username or email is taken."""

    async def create_admin(self, username: str, email: str, password: str) -> User: ...

    async def create_by_admin(self, actor: Principal, new: NewUser) -> User: ...

    async def get(self, actor: Principal, user_id: str) -> User: ...

    async def search(self, actor: Principal, query: UserQuery) -> Page: ...

    async def public_page(self, page: int, per_page: int) -> Page: ...

    async def public_get(self, user_id: str) -> User: ...

    async def update(self, actor: Principal, user_id: str, changes: UserChanges) -> User: ...

    async def set_status(self, actor: Principal, user_id: str, status: Status) -> User: ...

    async def set_role(self, actor: Principal, user_id: str, role: Role) -> User: ...

    async def verify(self, actor: Principal, user_id: str) -> User: ...

    async def delete(self, actor: Principal, user_id: str) -> None: ...

    async def change_password(self, actor: Principal, user_id: str, current: str, new: str) -> None: ...
