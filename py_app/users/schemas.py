"""REST bodies for users (msgspec Structs): what crosses the wire, never a password hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from py_app.users.models import MAX_LOGIN, MAX_SECRET, Page, Role, Status, User, UserChanges

Name = Annotated[str, msgspec.Meta(max_length=100)]
Password = Annotated[str, msgspec.Meta(max_length=MAX_SECRET)]  # the policy (8..128) is the service's
ShortText = Annotated[str, msgspec.Meta(max_length=MAX_LOGIN)]


class UserOut(msgspec.Struct, frozen=True):
    id: str
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str
    avatar_url: str
    role: Role
    status: Status
    is_verified: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(**{name: getattr(user, name) for name in cls.__struct_fields__})


class UserCreateIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Missing fields default to "" so the service names every bad field in one answer.
    username: ShortText = ""
    email: ShortText = ""
    password: Password = ""
    first_name: Name = ""
    last_name: Name = ""
    role: Annotated[str, msgspec.Meta(max_length=16)] = Role.USER.value


class UserPatchIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: ShortText | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    avatar_url: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    role: Role | None = None
    status: Status | None = None

    def changes(self) -> UserChanges:
        return UserChanges(**{name: getattr(self, name) for name in self.__struct_fields__})


class PasswordChangeIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    current_password: Password = ""
    new_password: Password = ""


class StatusIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: Status


class RoleIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role


class UserPageOut(msgspec.Struct, frozen=True):
    items: list[UserOut]
    page: int
    per_page: int
    total: int
    total_pages: int

    @classmethod
    def of(cls, page: Page) -> UserPageOut:
        items = [UserOut.of(user) for user in page.items]
        return cls(items, page.page, page.per_page, page.total, page.total_pages)


class PublicUser(msgspec.Struct, frozen=True):
    """The ReqRes record shape."""

    id: str
    email: str
    first_name: str
    last_name: str
    avatar: str

    @classmethod
    def of(cls, user: User) -> PublicUser:
        return cls(user.id, user.email, user.first_name, user.last_name, user.avatar_url)


class PublicPage(msgspec.Struct, frozen=True):
    page: int
    per_page: int
    total: int
    total_pages: int
    data: list[PublicUser]

    @classmethod
    def of(cls, page: Page) -> PublicPage:
        return cls(page.page, page.per_page, page.total, page.total_pages, [PublicUser.of(u) for u in page.items])


class PublicOne(msgspec.Struct, frozen=True):
    data: PublicUser
