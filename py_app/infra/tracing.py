"""Tracing switch: OpenTelemetry spans exported over OTLP/HTTP when ``ARCANA_OTEL_ENDPOINT`` is set.

Unset, every function here is a no-op that never imports OpenTelemetry: the hot path pays one global
read. Set, ``configure`` loads ``infra._otel`` (the only importer of the SDK) once per process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

_otel: Any = None  # the infra._otel module once tracing is configured, else None
_OFF: AbstractContextManager[None] = contextlib.nullcontext()


def configure(endpoint: str | None, service: str = "arcana") -> None:
    """Turn tracing on for this process (``endpoint`` set) or leave it off. Idempotent."""
    global _otel  # noqa: PLW0603 - one switch per process, set at start
    if not endpoint or _otel is not None:
        return
    from py_app.infra import _otel as otel

    otel.start(endpoint, service)
    _otel = otel


def enabled() -> bool:
    return _otel is not None


def shutdown() -> None:
    """Flush the spans still queued (at process exit)."""
    if _otel is not None:
        _otel.stop()


def server_span(name: str, traceparent: Callable[[], str | None]) -> AbstractContextManager[Any]:
    """A server span for one request, child of the caller's W3C ``traceparent`` when it sent one."""
    if _otel is None:
        return _OFF
    span: AbstractContextManager[Any] = _otel.server_span(name, traceparent())
    return span


def client_span(name: str) -> AbstractContextManager[Any]:
    """A client span for one internal call (layered mode), child of the request being served, when tracing is on;
    ``outgoing_metadata`` inside it names it as the callee's parent."""
    if _otel is None:
        return _OFF
    span: AbstractContextManager[Any] = _otel.client_span(name)
    return span


def name_rest(span: Any, method: str, route: str | None, status: int) -> None:
    if span is not None:
        _otel.finish_rest(span, method, route, status)


def name_user(span: Any, user_id: str) -> None:
    """The verified user a server span is for (OpenTelemetry's ``user.id``), when tracing is on."""
    if span is not None:
        span.set_attribute("user.id", user_id)


def finish_grpc(span: Any, code: str) -> None:
    if span is not None:
        _otel.finish_grpc(span, code)


def outgoing_metadata() -> list[tuple[str, str]]:
    """``traceparent`` (and ``tracestate``) for an outgoing call, when tracing is on."""
    return [] if _otel is None else _otel.outgoing()


def instrument_engine(engine: AsyncEngine | Engine) -> None:
    """A client span per statement run on ``engine`` (async, or the sync one SQLite reads run on), when tracing
    is on."""
    if _otel is not None:
        _otel.instrument_engine(engine)


@contextlib.contextmanager
def configured(endpoint: str | None) -> Iterator[None]:
    configure(endpoint)
    try:
        yield
    finally:
        shutdown()
