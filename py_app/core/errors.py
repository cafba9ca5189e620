"""Domain errors. Each carries a stable ``code``; every transport maps codes to its statuses once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input field: where it is and what is wrong, safe to show to the caller."""

    field: str
    message: str


class DomainError(Exception):
    """Base of the errors services raise. ``message`` is safe to show to clients."""

    code = "internal"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip()


class InvalidInput(DomainError):
    """The request is invalid."""

    code = "invalid_input"

    def __init__(self, message: str = "", errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors


class Unauthenticated(DomainError):
    """Authentication is required or has failed."""

    code = "unauthenticated"


class PermissionDenied(DomainError):
    """You are not allowed to do this."""

    code = "permission_denied"


class NotFound(DomainError):
    """The resource does not exist."""

    code = "not_found"


class Conflict(DomainError):
    """The resource already exists or has changed."""

    code = "conflict"


class RateLimited(DomainError):
    """Too many requests; try again later."""

    code = "rate_limited"

    def __init__(self, message: str = "", retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency is unavailable; try again later."""

    code = "unavailable"
