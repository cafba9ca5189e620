"""User entities and value rules. Pure Python: no framework, no database."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from py_app.core.errors import FieldError, InvalidInput

USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,32}")
MAX_EMAIL = 254
# Control, format (zero-width, bidi overrides), surrogate and line/paragraph-separator characters:
# invisible or terminal-altering, never part of a name anyone types on purpose.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
PASSWORD_MIN, PASSWORD_MAX = 8, 128
# Bounds on raw input, the same whichever transport carried it (REST schemas use them too).
MAX_LOGIN = 320  # a username or an email, as typed
MAX_SECRET = 1024  # a password as typed: longer is never stored (the policy's 128) and never hashed
# Longer is not a token of ours: refresh and mailed tokens are 43 characters, access tokens a few hundred, and the
# access-token verifier refuses more than this before any work (infra/security.py passes it to the Rust core).
MAX_TOKEN = 8192
MAX_QUERY = 254  # a username or email prefix
MAX_PAGE = 1_000_000  # deeper pages would make the database skip millions of rows


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
    """An account. ``password_hash`` never leaves the service layer (a layered edge gets it as "")."""

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
class NewUser:
    """What it takes to create an account."""

    username: str
    email: str
    password: str
    first_name: str = ""
    last_name: str = ""
    role: str = Role.USER.value
    is_verified: bool = False


@dataclass(frozen=True, slots=True)
class UserQuery:
    """Filters and one page of a user listing."""

    page: int = 1
    per_page: int = 20
    role: Role | None = None
    status: Status | None = None
    prefix: str | None = None  # matches the start of the username or the email
    exclude_role: Role | None = None  # leaves every account of this role out

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
    """A partial update, as a typed command: ``None`` leaves a field as it is."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    avatar_url: str | None = None
    role: Role | None = None
    status: Status | None = None
    is_verified: bool | None = None

    def values(self) -> dict[str, object]:
        """The fields this change sets (what an adapter writes, and nothing else)."""
        return {name: getattr(self, name) for name in UserChanges.__slots__ if getattr(self, name) is not None}

    @property
    def ends_sessions(self) -> bool:
        """Suspending or deactivating an account ends every session it has."""
        return self.status is not None and self.status is not Status.ACTIVE

    @property
    def touches_access(self) -> bool:
        """A role or status change alters what the account's live sessions may do."""
        return self.role is not None or self.status is not None

    @property
    def touches_principal(self) -> bool:
        """Changes what a cached principal of the account says: its access, or whether its address is verified
        (an admin's verification, or a new email that is unproven again)."""
        return self.touches_access or self.is_verified is not None

    @property
    def may_remove_an_admin(self) -> bool:
        """Applied to an active administrator, this change would leave them no longer one."""
        return (self.role is not None and self.role is not Role.ADMIN) or self.ends_sessions


LAST_ADMIN = "The last active administrator cannot be demoted, suspended, deactivated or deleted."


def is_active_admin(user: User) -> bool:
    return user.role is Role.ADMIN and user.status is Status.ACTIVE


@dataclass(frozen=True, slots=True)
class PasswordChange:
    """Replace a password hash, but only while ``expected_hash`` is still the stored one.

    Every session of the user other than ``keep_session`` ends in the same write.
    """

    user_id: str
    expected_hash: str
    new_hash: str
    now: datetime
    keep_session: str | None = None


@dataclass(frozen=True, slots=True)
class LoginWrite:
    """What a successful login records, guarded by what the login verified.

    The write applies only while the account still has ``verified_hash`` and is active: a
    suspension or password change that lands while the password is being checked wins.
    """

    user_id: str
    verified_hash: str
    now: datetime
    new_hash: str | None = None  # a rehash under the current parameters


LIMITS = {"first_name": 100, "last_name": 100, "phone": 32, "avatar_url": 500}


def check_profile(changes: UserChanges) -> list[FieldError | None]:
    errors: list[FieldError | None] = [
        check_length(name, getattr(changes, name), limit) or check_text(name, getattr(changes, name))
        for name, limit in LIMITS.items()
        if getattr(changes, name) is not None
    ]
    if changes.avatar_url and not changes.avatar_url.startswith(("https://", "http://")):
        errors.append(FieldError("avatar_url", "must be an http(s) URL"))
    if changes.email is not None:
        errors.append(check_email(changes.email))
    return errors


def check_text(field: str, value: str) -> FieldError | None:
    """Refuse control and invisible formatting characters (NUL, zero-width, ANSI escapes, bidi overrides)."""
    if any(unicodedata.category(char) in FORBIDDEN_CATEGORIES for char in value):
        return FieldError(field, "must not contain control or invisible formatting characters")
    return None


def check_length(field: str, value: str, limit: int) -> FieldError | None:
    return FieldError(field, f"must be at most {limit} characters") if len(value) > limit else None


def new_user_id() -> str:
    return str(uuid.uuid4())


def check_username(username: str) -> FieldError | None:
    if USERNAME_RE.fullmatch(username):
        return None
    return FieldError("username", "must be 3 to 32 characters of letters, digits, '_', '.' or '-'")


def username_key(username: str) -> str | None:
    """What usernames are compared by, on every backend: ASCII case folded, nothing else.

    None when ``username`` cannot be one (``check_username``): a login as ``ålice``, fullwidth
    ``ALICE`` (U+FF21 ...) or ``alice `` then never reaches a database whose collation would fold or
    pad it into ``alice``.
    """
    return username.lower() if USERNAME_RE.fullmatch(username) else None


def normalize_email(email: str) -> str:
    """The stored form: email-validator's normalisation (IDNA domain, NFC), then lower case."""
    if len(email) > MAX_LOGIN:  # never stored; not worth email-validator's per-character work
        return email.strip().lower()
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return email.strip().lower()  # never stored (check_email refuses it); a lookup simply finds nothing


def check_email(email: str) -> FieldError | None:
    """Syntax and safe characters by email-validator (no DNS: delivery is proven by verification mail).

    An address longer than any login as typed is refused by its length first: email-validator's work grows
    with the input, and a 1 MiB address would cost the event loop a second."""
    if len(email) > MAX_LOGIN:
        return FieldError("email", f"must be at most {MAX_EMAIL} characters")
    try:
        normalized = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return FieldError("email", "must be a valid email address")
    if len(normalized) > MAX_EMAIL:
        return FieldError("email", f"must be at most {MAX_EMAIL} characters")
    return None


def check_role(role: str) -> FieldError | None:
    if role in Role.__members__.values():
        return None
    return FieldError("role", "must be one of " + ", ".join(member.value for member in Role))


def raise_if(*errors: FieldError | None) -> None:
    """Raise one InvalidInput naming every bad field, or nothing."""
    found = tuple(error for error in errors if error is not None)
    if found:
        raise InvalidInput("The request has invalid fields.", found)
