"""REST bodies for users (msgspec Structs): what crosses the wire, never a password hash.

Request Structs forbid unknown fields (a misspelt field is an error, not a silent no-op). Each Struct's
``example`` is its example in the OpenAPI document: real values the service accepts or answers with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec

from py_app.users.models import (
    MAX_LOGIN,
    MAX_SECRET,
    PASSWORD_MIN,
    USERNAME_RE,
    Page,
    Role,
    Status,
    User,
    UserChanges,
)

Name = Annotated[str, msgspec.Meta(max_length=100)]
Password = Annotated[str, msgspec.Meta(max_length=MAX_SECRET)]  # the policy (8..128) is the service's
ShortText = Annotated[str, msgspec.Meta(max_length=MAX_LOGIN)]
# What the service checks (users/models.py), said in the document only: the Struct does not enforce
# it, so that the service names every bad field in one answer (rest_docs.StructSchemaPlugin reads it).
Username = Annotated[ShortText, msgspec.Meta(extra={"schema": {"pattern": f"^{USERNAME_RE.pattern}$"}})]
Email = Annotated[ShortText, msgspec.Meta(extra={"schema": {"format": "email"}})]
NewPassword = Annotated[Password, msgspec.Meta(extra={"schema": {"min_length": PASSWORD_MIN}})]
RoleName = Annotated[str, msgspec.Meta(max_length=16, extra={"schema": {"enum": [role.value for role in Role]}})]
# A field a client must send. Its Struct still defaults it to "" so that the service names every
# missing or bad field in one answer; the OpenAPI document (entrypoints/rest_docs.py) lists it as required.
REQUIRED = msgspec.Meta(extra={"required": True})

EXAMPLE_ID = "3f2c8a4e-5b1d-4c7a-9e2f-6a8b0c1d2e3f"


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

    example: ClassVar[dict[str, Any]] = {
        "id": EXAMPLE_ID,
        "username": "alice",
        "email": "alice@example.com",
        "first_name": "Alice",
        "last_name": "Liddell",
        "phone": "",
        "avatar_url": "",
        "role": "user",
        "status": "active",
        "is_verified": False,
        "created_at": "2026-01-15T09:30:00.000000Z",
        "updated_at": "2026-01-15T09:30:00.000000Z",
        "last_login_at": "2026-01-15T09:31:12.512004Z",
    }

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(**{name: getattr(user, name) for name in cls.__struct_fields__})


class UserCreateIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    username: Annotated[Username, REQUIRED] = ""
    email: Annotated[Email, REQUIRED] = ""
    password: Annotated[NewPassword, REQUIRED] = ""
    first_name: Name = ""
    last_name: Name = ""
    role: RoleName = Role.USER.value

    example: ClassVar[dict[str, Any]] = {
        "username": "bob",
        "email": "bob@example.com",
        "password": "blue whale singing softly",
        "first_name": "Bob",
        "last_name": "Dylan",
        "role": "user",
    }


class UserPatchIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Email | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    avatar_url: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    role: Role | None = None
    status: Status | None = None

    example: ClassVar[dict[str, Any]] = {
        "first_name": "Alicia",
        "phone": "+44 20 7946 0958",
        "avatar_url": "https://example.com/avatars/alice.png",
    }

    def changes(self) -> UserChanges:
        return UserChanges(**{name: getattr(self, name) for name in self.__struct_fields__})


class PasswordChangeIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    current_password: Annotated[Password, REQUIRED] = ""
    new_password: Annotated[NewPassword, REQUIRED] = ""

    example: ClassVar[dict[str, Any]] = {
        "current_password": "correct horse battery",
        "new_password": "tea party at the hatter's",
    }


class StatusIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: Status

    example: ClassVar[dict[str, Any]] = {"status": "suspended"}


class RoleIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role

    example: ClassVar[dict[str, Any]] = {"role": "guest"}


class UserPageOut(msgspec.Struct, frozen=True):
    items: list[UserOut]
    page: int
    per_page: int
    total: int
    total_pages: int

    example: ClassVar[dict[str, Any]] = {
        "items": [UserOut.example],
        "page": 1,
        "per_page": 20,
        "total": 1,
        "total_pages": 1,
    }

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

    example: ClassVar[dict[str, Any]] = {
        "id": EXAMPLE_ID,
        "email": "janet.weaver@reqres.in",
        "first_name": "Janet",
        "last_name": "Weaver",
        "avatar": "https://reqres.in/img/faces/2-image.jpg",
    }

    @classmethod
    def of(cls, user: User) -> PublicUser:
        return cls(user.id, user.email, user.first_name, user.last_name, user.avatar_url)


class PublicPage(msgspec.Struct, frozen=True):
    page: int
    per_page: int
    total: int
    total_pages: int
    data: list[PublicUser]

    example: ClassVar[dict[str, Any]] = {
        "page": 1,
        "per_page": 6,
        "total": 1,
        "total_pages": 1,
        "data": [PublicUser.example],
    }

    @classmethod
    def of(cls, page: Page) -> PublicPage:
        return cls(page.page, page.per_page, page.total, page.total_pages, [PublicUser.of(u) for u in page.items])


class PublicOne(msgspec.Struct, frozen=True):
    data: PublicUser

    example: ClassVar[dict[str, Any]] = {"data": PublicUser.example}
