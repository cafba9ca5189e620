"""User entities and value rules. Pure Python: no framework, no database."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from py_app.core.errors import FieldError, InvalidInput

USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,32}")
# Deliberately simple: one @, a dot in the domain, no spaces. Deliverability is proven by verification mail.
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
MAX_EMAIL = 254
PASSWORD_MIN, PASSWORD_MAX = 8, 128


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"
    GUEST = "guest"


class Status(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """An account. ``password_hash`` never leaves the service layer."""

    id: str
    username: str
    email: str
    password_hash: str
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    avatar_url: str = ""
    role: Role = Role.USER
    status: Status = Status.ACTIVE
    is_verified: bool = False
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UserQuery:
    """Filters and one page of a user listing."""

    page: int = 1
    per_page: int = 20
    role: Role | None = None
    status: Status | None = None
    prefix: str | None = None  # matches the start of the username or the email

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True, slots=True)
class Page:
    """A page of results with the numbers a client needs to walk the rest."""

    items: list[User]
    page: int
    per_page: int
    total: int

    @property
    def total_pages(self) -> int:
        return (self.total + self.per_page - 1) // self.per_page


@dataclass(frozen=True, slots=True)
class UserChanges:
    """A partial update: ``None`` leaves a field as it is."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    avatar_url: str | None = None
    role: Role | None = None
    status: Status | None = None


LIMITS = {"first_name": 100, "last_name": 100, "phone": 32, "avatar_url": 500}


def check_profile(changes: UserChanges) -> list[FieldError | None]:
    errors: list[FieldError | None] = [
        FieldError(name, f"must be at most {limit} characters")
        for name, limit in LIMITS.items()
        if len(getattr(changes, name) or "") > limit
    ]
    if changes.avatar_url and not changes.avatar_url.startswith(("https://", "http://")):
        errors.append(FieldError("avatar_url", "must be an http(s) URL"))
    if changes.email is not None:
        errors.append(check_email(normalize_email(changes.email)))
    return errors


def new_user_id() -> str:
    return str(uuid.uuid4())


def check_username(username: str) -> FieldError | None:
    if USERNAME_RE.fullmatch(username):
        return None
    return FieldError("username", "must be 3 to 32 characters of letters, digits, '_', '.' or '-'")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> FieldError | None:
    if len(email) <= MAX_EMAIL and EMAIL_RE.fullmatch(email):
        return None
    return FieldError("email", "must be a valid email address")


def check_role(role: str) -> FieldError | None:
    if role in Role.__members__.values():
        return None
    return FieldError("role", "must be one of " + ", ".join(member.value for member in Role))


def raise_if(*errors: FieldError | None) -> None:
    """Raise one InvalidInput naming every bad field, or nothing."""
    found = tuple(error for error in errors if error is not None)
    if found:
        raise InvalidInput("The request has invalid fields.", found)
