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


def raise_if(*errors: FieldError | None) -> None:
    """Raise one InvalidInput naming every bad field, or nothing."""
    found = tuple(error for error in errors if error is not None)
    if found:
        raise InvalidInput("The request has invalid fields.", found)
