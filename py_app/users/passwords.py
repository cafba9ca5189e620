"""Password policy (NIST SP 800-63B, OWASP): length bounds and a common-password list, no composition rules."""

from __future__ import annotations

from functools import cache
from importlib import resources

from py_app.core.errors import FieldError
from py_app.users.models import PASSWORD_MAX, PASSWORD_MIN


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased (loaded once)."""
    text = resources.files("py_app.users").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_password(password: str, field: str = "password") -> FieldError | None:
    if len(password) < PASSWORD_MIN:
        return FieldError(field, f"must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        return FieldError(field, f"must be at most {PASSWORD_MAX} characters")
    if password.lower() in common_passwords():
        return FieldError(field, "is too common; choose a less guessable password")
    return None
