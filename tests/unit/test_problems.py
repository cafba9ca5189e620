from __future__ import annotations

from typing import Any, cast

import msgspec
import pytest
from litestar import Request

from py_app.core.errors import Conflict, FieldError, InvalidInput, RateLimited, Unauthenticated
from py_app.entrypoints.problems import domain_error

REQUEST = cast(Request[Any, Any, Any], None)  # the mapping does not read the request


def body(response: Any) -> dict[str, Any]:
    return cast(dict[str, Any], msgspec.json.decode(msgspec.json.encode(response.content)))


@pytest.mark.req("SRS-051")
def test_rate_limited_is_429_with_retry_after() -> None:
    response = domain_error(REQUEST, RateLimited("Slow down.", retry_after=42))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "42"
    assert response.media_type == "application/problem+json"
    assert body(response)["type"] == "urn:arcana:problem:rate_limited"


@pytest.mark.req("SRS-051")
def test_unauthenticated_is_401_with_a_bearer_challenge() -> None:
    response = domain_error(REQUEST, Unauthenticated("No."))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.req("SRS-051")
@pytest.mark.parametrize(
    ("error", "status", "extra"),
    [
        (
            InvalidInput("Bad.", (FieldError("email", "is invalid"),)),
            400,
            [{"field": "email", "message": "is invalid"}],
        ),
        (Conflict("Taken."), 409, None),
    ],
)
def test_domain_errors_keep_their_code_and_fields(error: Exception, status: int, extra: Any) -> None:
    response = domain_error(REQUEST, error)  # type: ignore[arg-type]
    document = body(response)
    assert (response.status_code, document["status"]) == (status, status)
    assert document.get("errors") == extra
    assert document["detail"] == str(error)


@pytest.mark.req("SRS-110")
def test_a_field_problem_quotes_at_most_a_hundred_characters_of_what_was_sent() -> None:
    from litestar.exceptions import ValidationException

    from py_app.entrypoints.problems import http_error

    sent = "x" * 10_240
    quoted = f"Invalid enum value '{sent}' - at `$.role`"
    response = http_error(REQUEST, ValidationException(extra=[{"message": quoted, "key": "role"}]))
    (error,) = body(response)["errors"]
    assert error == {"field": "role", "message": f"Invalid enum value '{'x' * 80}…" + " - at `$.role`"}
    short = "Invalid enum value 'root' - at `$.role`"
    response = http_error(REQUEST, ValidationException(extra=[{"message": short, "key": "role"}]))
    assert body(response)["errors"] == [{"field": "role", "message": short}]
