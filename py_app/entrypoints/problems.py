"""REST error mapping, done once: every error becomes RFC 9457 problem details, never a stack trace."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from py_app.core.errors import DomainError, InvalidInput, RateLimited

logger = logging.getLogger("arcana.rest")

PROBLEM_JSON = "application/problem+json"
STATUS_BY_CODE = {
    "invalid_input": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "unavailable": 503,
}
CODE_BY_STATUS = {status: code for code, status in STATUS_BY_CODE.items()} | {
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal",
}


def problem_type(code: str) -> str:
    """A stable URI per error code (RFC 9457 §3.1.1)."""
    return f"urn:arcana:problem:{code}"


def problem(
    status: int, code: str, detail: str, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    body = {"type": problem_type(code), "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"', **(headers or {})}
    return Response(body | (extra or {}), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    status = STATUS_BY_CODE.get(exc.code, 500)
    extra: dict[str, Any] = {"code": exc.code}
    headers = None
    if isinstance(exc, InvalidInput) and exc.errors:
        extra["errors"] = [{"field": error.field, "message": error.message} for error in exc.errors]
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(status, exc.code, exc.message, extra=extra, headers=headers)


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
            field = str(item.get("key") or item.get("source") or "body")
            errors.append({"field": field, "message": str(item.get("message", "is invalid"))})
    return errors or [{"field": "body", "message": "is invalid"}]


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
