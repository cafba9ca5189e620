"""The OpenTelemetry side of ``infra.tracing``: imported only when ``ARCANA_OTEL_ENDPOINT`` is set."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

_provider: TracerProvider | None = None
_tracer: trace.Tracer = trace.get_tracer("arcana")
_SPAN = "arcana_span"  # where a statement's span waits between the before and after cursor events
SERVER_ERROR = 500


def start(endpoint: str, service: str) -> None:
    global _provider, _tracer  # noqa: PLW0603 - one provider per process
    resource = Resource.create({"service.name": service, "process.pid": os.getpid()})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    _tracer = _provider.get_tracer("arcana")


def stop() -> None:
    if _provider is not None:
        _provider.shutdown()


def server_span(name: str, traceparent: str | None) -> Any:
    parent = propagate.extract({"traceparent": traceparent}) if traceparent else context.Context()
    # A domain error ends the handler with an exception (gRPC's abort): the status code says what it was.
    return _tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.SERVER, record_exception=False, set_status_on_exception=False
    )


def client_span(name: str) -> Any:
    """A client span for an outgoing internal call, child of the current span (the request being served);
    outside a request (background jobs' polling) none, as for database statements."""
    if not trace.get_current_span().is_recording():
        return contextlib.nullcontext()
    return _tracer.start_as_current_span(
        name, kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
    )


def finish_rest(span: trace.Span, method: str, route: str | None, status: int) -> None:
    if route:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.request.method", method)
    span.set_attribute("http.response.status_code", status)
    if status >= SERVER_ERROR:
        span.set_status(Status(StatusCode.ERROR))


def finish_grpc(span: trace.Span, code: str) -> None:
    span.set_attribute("rpc.system", "grpc")
    span.set_attribute("rpc.grpc.status_code", code)
    if code in ("INTERNAL", "UNAVAILABLE", "UNKNOWN", "DATA_LOSS", "DEADLINE_EXCEEDED"):
        span.set_status(Status(StatusCode.ERROR))


def outgoing() -> list[tuple[str, str]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


def instrument_engine(engine: AsyncEngine | Engine) -> None:
    system = engine.dialect.name
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    # The statement's first word names the span; its text and parameters are never recorded.
    def before(_conn: Any, _cursor: Any, statement: str, _params: Any, ctx: Any, _many: bool) -> None:
        if not trace.get_current_span().is_recording():
            return  # outside a request (background jobs' polling, health probes): no trace of its own
        operation = statement.lstrip().split(" ", 1)[0].upper() or "SQL"
        span = _tracer.start_span(f"db {operation}", kind=SpanKind.CLIENT)
        span.set_attribute("db.system.name", system)
        span.set_attribute("db.operation.name", operation)
        ctx.__dict__[_SPAN] = span

    def after(_conn: Any, _cursor: Any, _statement: str, _params: Any, ctx: Any, _many: bool) -> None:
        span = ctx.__dict__.pop(_SPAN, None)
        if span is not None:
            span.end()

    def failed(exception_context: Any) -> None:
        ctx = exception_context.execution_context
        span = ctx.__dict__.pop(_SPAN, None) if ctx is not None else None
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, type(exception_context.original_exception).__name__))
            span.end()

    event.listen(sync, "before_cursor_execute", before)
    event.listen(sync, "after_cursor_execute", after)
    event.listen(sync, "handle_error", failed)
