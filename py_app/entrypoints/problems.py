"""REST error mapping, done once: every error becomes RFC 9457 problem details, never a stack trace."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any, ClassVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap

from py_app.core.errors import ERRORS, DomainError, FieldError, Internal

logger = logging.getLogger("arcana.rest")

PROBLEM_JSON = "application/problem+json"
PROBLEM_PREFIX = "urn:arcana:problem:"
MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
UNKNOWN_FIELD = re.compile(r"contains unknown field `([^`]+)`")
LOCATION = " - at `"  # how msgspec ends a message: " - at `$.role`"
MAX_QUOTED = 100  # of a message quoting what was sent ("Invalid enum value '…'"): never an echo of 64 KiB
# Derived from the registry: one status per domain code (several codes may share a status).
STATUS_BY_CODE = {code: kind.http_status for code, kind in ERRORS.items()}
# The code of a framework error (routing, limits) that has no domain error behind it.
CODE_BY_STATUS = {kind.http_status: code for code, kind in reversed(ERRORS.items())} | {
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class FieldProblem(msgspec.Struct, frozen=True):
    field: str
    message: str


class ProblemDetails(msgspec.Struct, frozen=True):
    """RFC 9457 problem details, as every error response carries them (for the OpenAPI document)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] | None = None

    example: ClassVar[dict[str, Any]] = {
        "type": "urn:arcana:problem:invalid_input",
        "title": "Bad Request",
        "status": 400,
        "detail": "The request has invalid fields.",
        "code": "invalid_input",
        "errors": [{"field": "password", "message": "must be at least 8 characters"}],
    }


DESCRIPTIONS = {
    400: "Invalid input; `errors` names each bad field (an unknown field, a body that is not UTF-8 JSON: `body`)",
    401: "Missing, invalid or expired access token, or its session has ended (WWW-Authenticate: Bearer)",
    403: "Not allowed for this caller",
    404: "No such resource",
    409: "Already exists",
    413: "Request body over 64 KiB",
    415: "The body is not sent as Content-Type: application/json",
    429: "Too many requests (Retry-After)",
    503: "The database is busy or unavailable (Retry-After)",
}
BODY_ERRORS = (400, 413, 415)  # what any route reading a JSON body can answer before it runs


def problem_responses(
    *statuses: int, body: bool = False, described: dict[int, str] | None = None
) -> dict[int, ResponseSpec]:
    """OpenAPI descriptions of the problem documents a route can answer with.

    ``body=True`` adds what every route with a JSON body may answer; ``described`` replaces the generic
    text of a status where the route means something narrower (login's 401 is bad credentials).
    """
    texts = DESCRIPTIONS | (described or {})
    return {
        status: ResponseSpec(data_container=ProblemDetails, description=texts[status], media_type=PROBLEM_JSON)
        for status in sorted({*statuses, *(BODY_ERRORS if body else ())})
    }


def problem_type(code: str) -> str:
    """A stable URI per error code (RFC 9457 §3.1.1)."""
    return f"{PROBLEM_PREFIX}{code}"


def problem(
    status: int, code: str, detail: str, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    body = {"type": problem_type(code), "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"', **(headers or {})}
    return Response(body | (extra or {}), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    extra: dict[str, Any] = {"code": exc.code}
    if exc.errors:
        extra["errors"] = [{"field": error.field, "message": error.message} for error in exc.errors]
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return problem(exc.http_status, exc.code, exc.message, extra=extra, headers=headers)


def error_from_problem(status: int, body: Any, headers: Any) -> DomainError:
    """The domain error a problem document stands for (the reverse of ``domain_error``)."""
    body = body if isinstance(body, dict) else {}
    kind = ERRORS.get(str(body.get("code", ""))) or ERRORS.get(CODE_BY_STATUS.get(status, ""), Internal)
    errors = tuple(
        FieldError(str(item.get("field", "")), str(item.get("message", "")))
        for item in body.get("errors") or ()
        if isinstance(item, dict)
    )
    retry = headers.get("retry-after") if headers is not None else None
    retry_after = int(retry) if retry is not None and str(retry).isdigit() else None
    return kind.rebuild(str(body.get("detail", "")), errors, retry_after)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    code = CODE_BY_STATUS.get(status, "invalid_input" if 400 <= status < 500 else "internal")
    extra: dict[str, Any] = {"code": code}
    if isinstance(exc, ValidationException):
        extra["errors"] = _field_errors(exc.extra)
        detail = "The request body or parameters are invalid."
    else:
        detail = exc.detail if status < 500 else "The server could not complete the request."
    headers = {key: value for key, value in (exc.headers or {}).items() if key.lower() in ("allow", "retry-after")}
    return problem(status, code, detail, extra=extra, headers=headers or None)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    logger.exception("unhandled error", extra={"path": request.url.path, "method": request.method})
    return problem(500, "internal", "The server could not complete the request.", extra={"code": "internal"})


def _field_errors(extra: Any) -> list[dict[str, str]]:
    items = extra if isinstance(extra, list) else []
    errors = []
    for item in items:
        if isinstance(item, dict):
            message = _bounded(str(item.get("message", "is invalid")))
            # msgspec reports a missing or unknown field on the body as a whole; name the field instead.
            named = MISSING_FIELD.search(message) or UNKNOWN_FIELD.search(message)
            field = named.group(1) if named else str(item.get("key") or item.get("source") or "body")
            errors.append({"field": "body" if field == "data" else field, "message": message})
    return errors or [{"field": "body", "message": "is invalid"}]


def _bounded(message: str) -> str:
    """The message with what it quotes of the request cut short; its location (which names the field) kept."""
    head, at, where = message.rpartition(LOCATION)
    if not at:
        head, where = where, ""
    return (head[:MAX_QUOTED] + "…" if len(head) > MAX_QUOTED else head) + at + where


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
