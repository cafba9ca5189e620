"""The metrics port's Prometheus adapter, and the management listener that serves ``GET /metrics``.

Workers (Granian's, the gRPC runner's) each record into files of prometheus_client's multiprocess mode,
in a directory the runner makes fresh for every start (``multiprocess_dir``) before any worker exists;
the runner's own process serves the sum of every worker's files on ``ARCANA_METRICS_PORT``. The library
picks its storage when it is first imported; the adapter picks it again when it is made (``_pick_storage``),
so the storage follows the runner's directory whatever imported the library first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from py_app.infra.scratch import inherited_folder

logger = logging.getLogger("arcana.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HASH_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)

# Every metric the service exports, by name (the Grafana dashboard's queries are checked against these).
NAMES = (
    "arcana_http_requests_total",
    "arcana_http_request_duration_seconds",
    "arcana_grpc_requests_total",
    "arcana_grpc_request_duration_seconds",
    "arcana_auth_login_attempts_total",
    "arcana_auth_lockouts_total",
    "arcana_auth_tokens_issued_total",
    "arcana_auth_refresh_total",
    "arcana_auth_refresh_reuse_total",
    "arcana_auth_token_verifications_total",
    "arcana_rate_limited_total",
    "arcana_password_hash_duration_seconds",
    "arcana_cache_requests_total",
    "arcana_db_pool_checked_out",
    "arcana_db_pool_size",
    "arcana_counters_fallback_total",
    "arcana_counters_degraded",
)


class PrometheusMetrics:
    """Records into prometheus_client metrics (in multiprocess mode when the runner set it up)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        _pick_storage()
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._http = Counter(
            "arcana_http_requests", "REST requests answered", ["method", "route", "status"], registry=r
        )
        self._http_seconds = Histogram(
            "arcana_http_request_duration_seconds",
            "REST request duration, to the last byte sent",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self._rpc = Counter("arcana_grpc_requests", "gRPC calls answered", ["service", "method", "code"], registry=r)
        self._rpc_seconds = Histogram(
            "arcana_grpc_request_duration_seconds",
            "gRPC call duration, to the status",
            ["service", "method"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self._login = Counter("arcana_auth_login_attempts", "login attempts", ["result"], registry=r)
        self._lockouts = Counter("arcana_auth_lockouts", "accounts locked after failed logins", registry=r)
        self._issued = Counter("arcana_auth_tokens_issued", "access tokens issued", ["grant"], registry=r)
        self._refresh = Counter("arcana_auth_refresh", "refresh-token presentations", ["result"], registry=r)
        self._reuse = Counter("arcana_auth_refresh_reuse", "spent refresh tokens presented again", registry=r)
        self._verified = Counter(
            "arcana_auth_token_verifications", "access tokens checked", ["result", "transport"], registry=r
        )
        self._limited = Counter("arcana_rate_limited", "requests refused by a rate limit", ["policy"], registry=r)
        self._hash_seconds = Histogram(
            "arcana_password_hash_duration_seconds",
            "argon2 hash and verify duration, the wait for a slot included",
            ["operation"],
            buckets=HASH_BUCKETS,
            registry=r,
        )
        self._cache = Counter("arcana_cache_requests", "cache lookups", ["cache", "result"], registry=r)
        # Gauges: the sum over the live worker processes (each removes its own at exit: ``close``).
        self._checked_out = Gauge(
            "arcana_db_pool_checked_out", "database connections in use", registry=r, multiprocess_mode="livesum"
        )
        self._pool_size = Gauge(
            "arcana_db_pool_size", "database pool size (connections kept open)", registry=r, multiprocess_mode="livesum"
        )
        # The per-request series, looked up once (``labels`` takes a lock and builds a tuple every call);
        # their label sets are bounded (route templates, method names, status codes).
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._rpc_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._children: dict[tuple[object, ...], Counter] = {}
        self._fallback = Counter(
            "arcana_counters_fallback",
            "rate-limit counter operations done in-process because Redis failed",
            registry=r,
        )
        self._degraded = Gauge(
            "arcana_counters_degraded",
            "processes counting rate limits in-process because Redis is down",
            registry=r,
            multiprocess_mode="livesum",
        )

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        pair = self._http_children.get(key)
        if pair is None:
            pair = self._http_children[key] = (
                self._http.labels(method, route, str(status)),
                self._http_seconds.labels(method, route),
            )
        pair[0].inc()
        pair[1].observe(seconds)

    def _child(self, counter: Counter, *labels: str) -> Counter:
        """The counter's series for these label values, looked up once (the per-request ones: a few a call)."""
        key = (id(counter), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        return child

    def rpc_call(self, service: str, method: str, code: str, seconds: float) -> None:
        key = (service, method, code)
        pair = self._rpc_children.get(key)
        if pair is None:
            pair = self._rpc_children[key] = (
                self._rpc.labels(service, method, code),
                self._rpc_seconds.labels(service, method),
            )
        pair[0].inc()
        pair[1].observe(seconds)

    def login(self, result: str) -> None:
        self._child(self._login, result).inc()

    def lockout(self) -> None:
        self._lockouts.inc()

    def token_issued(self, grant: str) -> None:
        self._child(self._issued, grant).inc()

    def refresh(self, result: str) -> None:
        self._child(self._refresh, result).inc()

    def refresh_reuse(self) -> None:
        self._reuse.inc()

    def token_verification(self, result: str, transport: str) -> None:
        self._child(self._verified, result, transport).inc()

    def rate_limited(self, policy: str) -> None:
        self._limited.labels(policy).inc()

    def password_hash(self, operation: str, seconds: float) -> None:
        self._hash_seconds.labels(operation).observe(seconds)

    def cache_lookup(self, cache: str, hit: bool) -> None:
        self._child(self._cache, cache, "hit" if hit else "miss").inc()

    def pool_checked_out(self, delta: int) -> None:
        self._checked_out.inc(delta)

    def pool_size(self, size: int) -> None:
        self._pool_size.set(size)

    def counters_fallback(self, degraded: bool) -> None:
        if degraded:
            self._fallback.inc()
        self._degraded.set(1 if degraded else 0)

    def close(self) -> None:
        """At this process's end: its gauges leave the sums (its counters stay, as counters must)."""
        if os.environ.get(MULTIPROC_ENV):
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _pick_storage() -> None:
    """prometheus_client chooses its storage (memory, or the multiprocess files) when it is imported, from the
    environment; a runner sets the directory later, after this process (or the parent it forked from) had
    imported the library. Choose again, before the first metric is made, so the choice follows the runner."""
    multi = bool(os.environ.get(MULTIPROC_ENV))
    if bool(getattr(values.ValueClass, "_multiprocess", False)) != multi:
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def scrape_registry(directory: str) -> CollectorRegistry:
    """What ``/metrics`` serves: the sum of every worker's files in ``directory``."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


@contextlib.contextmanager
def multiprocess_dir() -> Iterator[str]:
    """A fresh, empty directory for this start's worker files, set in the environment the workers inherit,
    and removed at the end (a previous run's counts never leak into this one's)."""
    with inherited_folder(MULTIPROC_ENV, "arcana-metrics-") as folder:
        yield str(folder)


class _Handler(BaseHTTPRequestHandler):
    registry: CollectorRegistry

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"not found\n", "text/plain; charset=utf-8")
            return
        # The classic text format, which every Prometheus version reads (the names need no UTF-8).
        self._answer(200, generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server protocol
        return None  # scrapes every few seconds would drown the log


class _Listener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        if ":" in address[0]:  # an IPv6 host (``::1``, ``::``)
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


@contextlib.contextmanager
def serving(host: str, port: int) -> Iterator[str]:
    """Serve ``GET /metrics`` on ``host:port`` from a thread of this process while the block runs.

    Sets up the multiprocess directory first, so every worker started inside the block records into it.
    Yields the directory.
    """
    with multiprocess_dir() as directory:
        handler = type("MetricsHandler", (_Handler,), {"registry": scrape_registry(directory)})
        server = _Listener((host, port), handler)
        thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
        thread.start()
        logger.info("metrics serving", extra={"address": f"{host}:{server.server_address[1]}"})
        try:
            yield directory
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
