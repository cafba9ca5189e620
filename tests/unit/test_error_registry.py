"""One registry of domain errors: every error maps to both transports and back to the same error."""

from __future__ import annotations

from typing import Any, cast

import grpc
import msgspec
import pytest
from litestar import Request

from py_app.core.errors import ERRORS, DomainError, FieldError
from py_app.entrypoints.problems import STATUS_BY_CODE, domain_error, error_from_problem
from py_app.infra.rpc_errors import from_status, to_status

REQUEST = cast(Request[Any, Any, Any], None)  # the mapping does not read the request


def sample(kind: type[DomainError]) -> DomainError:
    """An instance carrying every field its kind can carry."""
    return kind.rebuild(f"{kind.__name__} happened.", (FieldError("email", "is invalid"),), 7)


def same(left: DomainError, right: DomainError) -> bool:
    return (type(left), left.message, left.errors, left.retry_after) == (
        type(right),
        right.message,
        right.errors,
        right.retry_after,
    )


@pytest.mark.req("SRS-080")
@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_error_round_trips_through_rest(code: str) -> None:
    error = sample(ERRORS[code])
    response = domain_error(REQUEST, error)
    body = msgspec.json.decode(msgspec.json.encode(response.content))
    assert (response.status_code, body["code"], body["type"]) == (
        ERRORS[code].http_status,
        code,
        f"urn:arcana:problem:{code}",
    )
    headers = {key.lower(): value for key, value in response.headers.items()}
    back = error_from_problem(ERRORS[code].http_status, body, headers)
    assert same(back, error), (back, error)


@pytest.mark.req("SRS-080")
@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_error_round_trips_through_grpc(code: str) -> None:
    error = sample(ERRORS[code])
    status = to_status(error)
    assert status.code is grpc.StatusCode[ERRORS[code].grpc_status]
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    back = from_status(status.code, status.details, details)
    assert same(back, error), (back, error)


@pytest.mark.req("SRS-080")
def test_the_registry_covers_every_error_class_and_both_tables() -> None:
    def subclasses(kind: type[DomainError]) -> set[type[DomainError]]:
        found = set(kind.__subclasses__())
        return found.union(*(subclasses(child) for child in found))

    concrete = {kind for kind in subclasses(DomainError) if "code" in kind.__dict__}
    assert concrete == set(ERRORS.values())
    assert set(STATUS_BY_CODE) == set(ERRORS)
    assert len(ERRORS) >= 8


@pytest.mark.req("SRS-080")
def test_an_error_that_forgets_a_transport_cannot_be_defined() -> None:
    with pytest.raises(TypeError, match="each transport"):

        class Forgotten(DomainError):  # registers nothing: the definition itself fails
            code = "forgotten"
            http_status = 418

    assert "forgotten" not in ERRORS
    with pytest.raises(TypeError, match="already registered"):

        class Twice(DomainError):
            code = "not_found"
            http_status = 404
            grpc_status = "NOT_FOUND"


@pytest.mark.req("SRS-080")
def test_a_status_without_details_maps_to_the_nearest_domain_error() -> None:
    assert type(from_status(grpc.StatusCode.UNAVAILABLE, "tier down", None)).__name__ == "Unavailable"
    assert type(from_status(grpc.StatusCode.DEADLINE_EXCEEDED, "slow", None)).__name__ == "Unavailable"
    assert type(from_status(grpc.StatusCode.UNKNOWN, "boom", None)).__name__ == "Internal"
    assert type(from_status(grpc.StatusCode.NOT_FOUND, "gone", None)).__name__ == "NotFound"
