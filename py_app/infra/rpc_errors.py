"""Domain errors on the gRPC wire, both ways, derived from the registry in ``core.errors``.

Out: a status code with ``google.rpc`` details (ErrorInfo with the domain code as reason, BadRequest
naming bad fields, RetryInfo when the caller should wait). Back: the same details rebuild the same
domain error, which is what a gRPC client adapter raises, so a service cannot tell a remote port
from an in-process one.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from py_app.core.errors import ERRORS, DomainError, FieldError, Internal, Unavailable

DOMAIN = "arcana"
STATUS_BY_CODE: dict[str, grpc.StatusCode] = {code: grpc.StatusCode[kind.grpc_status] for code, kind in ERRORS.items()}


def to_status(error: DomainError) -> grpc.Status:
    """The status a server aborts with for ``error``."""
    status = status_pb2.Status(code=STATUS_BY_CODE[error.code].value[0], message=error.message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=error.code, domain=DOMAIN))
    if error.errors:
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field=item.field, description=item.message)
            for item in error.errors
        ]
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=violations))
    if error.retry_after is not None:
        delay = duration_pb2.Duration(seconds=error.retry_after)
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return rpc_status.to_status(status)


def from_status(code: grpc.StatusCode, message: str, details: bytes | None) -> DomainError:
    """The domain error a status stands for: by ErrorInfo reason, else by code (a tier that is down
    or timed out is Unavailable; anything unmapped is Internal)."""
    errors: list[FieldError] = []
    reason, retry_after = "", None
    for detail in _details(details):
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason if info.domain == DOMAIN else ""
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            errors += [FieldError(item.field, item.description) for item in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = int(retry.retry_delay.seconds)
    kind = ERRORS.get(reason) or _BY_STATUS.get(code, Internal)
    return kind.rebuild(message, tuple(errors), retry_after)


def from_rpc_error(error: grpc.aio.AioRpcError) -> DomainError:
    """What a failed call to another tier means to this one."""
    details = next((value for key, value in error.trailing_metadata() or () if key == "grpc-status-details-bin"), None)
    return from_status(error.code(), error.details() or "", details if isinstance(details, bytes) else None)


def _details(raw: bytes | None) -> list[Any]:
    if not raw:
        return []
    status = status_pb2.Status()
    status.ParseFromString(raw)
    return list(status.details)


# Codes without an ErrorInfo (a proxy, a crashed tier, grpc itself): the nearest domain meaning.
_BY_STATUS: dict[grpc.StatusCode, type[DomainError]] = {
    STATUS_BY_CODE[code]: kind for code, kind in ERRORS.items() if kind is not Internal
} | {grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable}
