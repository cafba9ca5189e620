"""A stand-in OTLP/HTTP collector for tests: a tiny HTTP server on 127.0.0.1 that keeps every span POSTed
to ``/v1/traces`` (protobuf ``ExportTraceServiceRequest``, as the real exporter sends it)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

WAIT_SECONDS = 30.0  # the exporter sends in batches; this bounds the wait for one, not a speed


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, object]
    server: bool  # kind SERVER; a client span of an internal call has the same name as its callee's server span


class Collector:
    def __init__(self) -> None:
        self._spans: list[Span] = []
        self._lock = threading.Lock()
        self.url = ""

    def record(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self._spans.extend(_span(span) for span in scope.spans)

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def wait_for(self, found: Callable[[list[Span]], bool]) -> list[Span]:
        """The spans received, once ``found`` holds for them (or the wait ran out: the caller asserts)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and not found(self.spans()):
            time.sleep(0.1)
        return self.spans()


def _span(span: object) -> Span:
    attributes = {item.key: _value(item.value) for item in span.attributes}  # type: ignore[attr-defined]
    return Span(
        name=span.name,  # type: ignore[attr-defined]
        trace_id=span.trace_id.hex(),  # type: ignore[attr-defined]
        span_id=span.span_id.hex(),  # type: ignore[attr-defined]
        parent_span_id=span.parent_span_id.hex(),  # type: ignore[attr-defined]
        attributes=attributes,
        server=span.kind == span.SPAN_KIND_SERVER,  # type: ignore[attr-defined]
    )


def _value(value: object) -> object:
    kind = value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(value, kind) if kind else None


@contextmanager
def collector(port: int) -> Iterator[Collector]:
    sink = Collector()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/v1/traces":
                sink.record(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: object) -> None:  # the test's output is the server's, not ours
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    sink.url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, name="otlp-stub", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
