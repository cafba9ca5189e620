"""User use cases. Depend on models and ports only: no session, request or proto is seen here."""

from __future__ import annotations

from dataclasses import dataclass

from py_app.core.ports import Clock, PasswordHasher
from py_app.users.models import Role, Status, User, check_email, check_username, new_user_id, normalize_email, raise_if
from py_app.users.passwords import check_password
from py_app.users.ports import UsersUnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class NewUser:
    """What it takes to create an account."""

    username: str
    email: str
    password: str
    first_name: str = ""
    last_name: str = ""
    role: Role = Role.USER
    is_verified: bool = False


class UserService:
    """Creates and reads accounts."""

    def __init__(self, uow: UsersUnitOfWorkFactory, hasher: PasswordHasher, clock: Clock) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock

    async def create(self, new: NewUser) -> User:
        """Validate, hash the password off the event loop, and store; Conflict when taken."""
        email = normalize_email(new.email)
        raise_if(check_username(new.username), check_email(email), check_password(new.password))
        now = self._clock.now()
        user = User(
            id=new_user_id(),
            username=new.username,
            email=email,
            password_hash=await self._hasher.hash(new.password),
            first_name=new.first_name,
            last_name=new.last_name,
            role=new.role,
            status=Status.ACTIVE,
            is_verified=new.is_verified,
            created_at=now,
            updated_at=now,
        )
        async with self._uow() as uow:
            await uow.users.add(user)
            await uow.commit()
        return user

    async def create_admin(self, username: str, email: str, password: str) -> User:
        """The bootstrap path for the first administrator (there is never a default password)."""
        return await self.create(NewUser(username, email, password, role=Role.ADMIN, is_verified=True))
