"""Domain errors, and the one registry every transport derives its tables from.

Each error class declares its stable ``code`` and what it is on each wire (an HTTP status and a
gRPC status name, as plain values so this module imports no framework). Defining a subclass with a
``code`` registers it; REST problem details, gRPC statuses and the reverse mappings (a gRPC client
turning a status back into the same error) are all built from ``ERRORS``, so a new error cannot be
mapped on one transport and forgotten on the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input field: where it is and what is wrong, safe to show to the caller."""

    field: str
    message: str


ERRORS: dict[str, type[DomainError]] = {}


class DomainError(Exception):
    """Base of the errors services raise. ``message`` is safe to show to clients."""

    code: ClassVar[str]
    http_status: ClassVar[int]
    grpc_status: ClassVar[str]  # a grpc.StatusCode member name
    errors: tuple[FieldError, ...] = ()
    retry_after: int | None = None  # seconds, for errors worth retrying

    def __init__(self, message: str = "") -> None:
        self.message = message or (type(self).__doc__ or type(self).__name__).strip()
        super().__init__(self.message)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            if not all(hasattr(cls, wire) for wire in ("http_status", "grpc_status")):
                raise TypeError(f"{cls.__name__} must say what it is on each transport (http_status, grpc_status)")
            if cls.code in ERRORS:
                raise TypeError(f"error code {cls.code!r} is already registered by {ERRORS[cls.code].__name__}")
            ERRORS[cls.code] = cls

    @classmethod
    def rebuild(cls, message: str, errors: tuple[FieldError, ...] = (), retry_after: int | None = None) -> Self:
        """The same error again from what a transport carried (the reverse of the mappings)."""
        return cls(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidInput(DomainError):
    """The request is invalid."""

    code = "invalid_input"
    http_status = 400
    grpc_status = "INVALID_ARGUMENT"

    def __init__(self, message: str = "", errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors

    @classmethod
    def rebuild(cls, message: str, errors: tuple[FieldError, ...] = (), retry_after: int | None = None) -> Self:
        return cls(message, errors)


class Unauthenticated(DomainError):
    """Authentication is required or has failed."""

    code = "unauthenticated"
    http_status = 401
    grpc_status = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    """You are not allowed to do this."""

    code = "permission_denied"
    http_status = 403
    grpc_status = "PERMISSION_DENIED"


class NotFound(DomainError):
    """The resource does not exist."""

    code = "not_found"
    http_status = 404
    grpc_status = "NOT_FOUND"


class Conflict(DomainError):
    """The resource already exists or has changed."""

    code = "conflict"
    http_status = 409
    grpc_status = "ALREADY_EXISTS"


class _Retryable(DomainError):
    """An error that says when to try again."""

    def __init__(self, message: str = "", retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @classmethod
    def rebuild(cls, message: str, errors: tuple[FieldError, ...] = (), retry_after: int | None = None) -> Self:
        return cls(message, retry_after=1 if retry_after is None else retry_after)


class RateLimited(_Retryable):
    """Too many requests; try again later."""

    code = "rate_limited"
    http_status = 429
    grpc_status = "RESOURCE_EXHAUSTED"


class Unavailable(_Retryable):
    """A dependency is unavailable; try again later."""

    code = "unavailable"
    http_status = 503
    grpc_status = "UNAVAILABLE"


class Internal(DomainError):
    """The server could not complete the request."""

    code = "internal"
    http_status = 500
    grpc_status = "INTERNAL"


class EmailUnverified(PermissionDenied):
    """Confirm your email address first."""

    code = "email_unverified"
