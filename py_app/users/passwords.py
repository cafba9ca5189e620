"""Password policy (NIST SP 800-63B, OWASP): length bounds, a common-password list and context words,
no composition rules. Passwords are NFKC-normalised before they are checked, hashed or verified, so
the same password typed on two keyboards (composed or decomposed characters, ligatures, fullwidth
forms) is the same password.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources

from py_app.core.errors import FieldError
from py_app.core.ports import PasswordHasher
from py_app.users.models import FORBIDDEN_CATEGORIES, MAX_SECRET, PASSWORD_MAX, PASSWORD_MIN

SERVICE_NAME = "arcana"
MIN_CONTEXT_WORD = 3  # shorter fragments of a name would refuse too much


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased (loaded once)."""
    text = resources.files("py_app.users").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def normalize_password(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


async def verify_password(hasher: PasswordHasher, encoded: str, password: str) -> tuple[bool, bool]:
    """(matches, stored under an older form): the NFKC form first, then, for hashes stored before
    passwords were normalised, the password as typed. Both steps run whenever the two forms differ,
    whatever the first answered, so the work never depends on the stored hash; a dummy hash costs
    the same for the same typed password."""
    normalized = normalize_password(password)
    matches = await hasher.verify(encoded, normalized)
    if normalized == password:
        return matches, False
    legacy = await hasher.verify(encoded, password)
    return matches or legacy, legacy and not matches


def context_words(username: str, email: str) -> tuple[str, ...]:
    """What a password must not contain (NIST SP 800-63B: context-specific words)."""
    return (username, email.partition("@")[0], SERVICE_NAME)


def check_password(password: str, field: str = "password", *, context: Iterable[str] = ()) -> FieldError | None:
    """The first rule the (normalised) password breaks, or None. A password past MAX_SECRET as typed is refused
    by its length before any per-character rule runs over it."""
    if len(password) > MAX_SECRET:
        return FieldError(field, f"must be at most {PASSWORD_MAX} characters")
    normalized = normalize_password(password)
    folded = normalized.casefold()
    words = [word.casefold() for word in context if len(word) >= MIN_CONTEXT_WORD]
    rules = (
        (len(normalized) < PASSWORD_MIN, f"must be at least {PASSWORD_MIN} characters"),
        (len(normalized) > PASSWORD_MAX, f"must be at most {PASSWORD_MAX} characters"),
        (not normalized.strip(), "must not be only spaces"),
        (
            any(unicodedata.category(char) in FORBIDDEN_CATEGORIES for char in normalized),
            "must not contain control or invisible formatting characters",
        ),
        (folded in common_passwords(), "is too common; choose a less guessable password"),
        (
            any(word in folded for word in words),
            "must not contain your username, your email address or the service's name",
        ),
    )
    return next((FieldError(field, message) for broken, message in rules if broken), None)
