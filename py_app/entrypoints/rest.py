"""The REST transport: the Litestar application and its lifespan (which also runs this process's gRPC server)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide

from py_app.audit.controllers import AuditController
from py_app.auth.controllers import AuthController, KeysController, provide_principal
from py_app.bootstrap import Container, build_edge
from py_app.config import Settings, load_settings
from py_app.entrypoints import drain, heap, rpc
from py_app.entrypoints.problems import EXCEPTION_HANDLERS
from py_app.entrypoints.rest_docs import StructSchemaPlugin, docs_route_handlers, openapi_config
from py_app.entrypoints.rest_guards import JsonBodyRequest
from py_app.entrypoints.rest_metrics import RequestMetrics
from py_app.entrypoints.rest_observe import RequestObserver, route_methods
from py_app.entrypoints.rest_support import provide
from py_app.health.controllers import HealthController
from py_app.infra import jobs, tracing
from py_app.infra.logs import configure_logging
from py_app.users.controllers import PublicUsersController, UsersController

logger = logging.getLogger("arcana.rest")

MAX_BODY_BYTES = 64 * 1024


def create_app(
    settings: Settings, *, with_grpc: bool = False, with_jobs: bool = False, container: Container | None = None
) -> Litestar:
    """The application. ``with_grpc`` also serves gRPC from this process, on the same event loop, and
    ``with_jobs`` runs the background jobs (the outbox relay, housekeeping) there too."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.container = built = container or build_edge(settings)
        app.state.trusted_networks = settings.trusted_networks
        await built.auth.prepare()
        freezing: asyncio.TimerHandle | None = None
        try:
            async with contextlib.AsyncExitStack() as serving:
                if with_jobs:
                    await serving.enter_async_context(jobs.running(built.jobs, settings.shutdown_grace))
                if with_grpc:
                    await serving.enter_async_context(_serving_grpc(built, settings))
                # Off the start-up Granian waits on, kept as short as it can be: Granian loses a Ctrl-C that
                # reaches a worker still starting, and kills that worker after the grace.
                freezing = asyncio.get_running_loop().call_later(heap.FREEZE_AFTER, heap.freeze_startup)
                yield
                built.lifecycle.draining = True
        finally:
            if freezing is not None:
                freezing.cancel()
            heap.thaw()
            built.lifecycle.draining = True
            await built.aclose()
            tracing.shutdown()

    handlers: list[Any] = [
        HealthController,
        AuthController,
        KeysController,
        UsersController,
        AuditController,
        *docs_route_handlers(settings),
    ]
    if settings.public_directory:
        handlers.append(PublicUsersController)
    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "health": provide("health"),
            "auth": provide("auth"),
            "recovery": provide("recovery"),
            "audit": provide("audit"),
            "keys": provide("keys"),
            "users": provide("users"),
            "principal": Provide(provide_principal),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY_BYTES,
        request_class=JsonBodyRequest,
        cors_config=cors_config(settings),
        openapi_config=openapi_config(settings),
        plugins=[StructSchemaPlugin()],
        debug=False,
        logging_config=None,  # logs are configured once, as JSON, by infra/logs.py
    )
    handler = app.asgi_handler
    if settings.metrics_port is not None:
        # Around everything, routing errors included (Litestar middleware sees only matched routes); with
        # metrics off the request path has no wrapper at all.
        handler = RequestMetrics(handler)
    # Outside routing, so that unmatched paths and every problem answer get a request id and a log line too.
    app.asgi_handler = RequestObserver(handler, settings.trusted_networks, route_methods(app))
    return app


def cors_config(settings: Settings) -> CORSConfig | None:
    """Browsers on the configured origins may call the API with a bearer token; no origin by default.

    No credentials mode: the API reads tokens from ``Authorization``, never from cookies.
    """
    if not settings.cors_origin_list:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origin_list),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After", "WWW-Authenticate"],
        allow_credentials=False,
        max_age=600,
    )


def serve_app() -> Litestar:
    """Granian's factory: each worker process reads the settings and serves REST and gRPC."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.effective_log_format)
    tracing.configure(settings.otel_endpoint)
    return create_app(settings, with_grpc=True, with_jobs=settings.jobs)


@contextlib.asynccontextmanager
async def _serving_grpc(container: Container, settings: Settings) -> AsyncIterator[None]:
    """gRPC on this worker's loop; its drain's outcome is reported the moment the server has stopped
    (before the jobs and pools close), for the runner that decides the exit code."""
    async with rpc.serving(container, settings.grpc_host, settings.grpc_port) as server:
        drain.report(drain.SERVING)
        yield
        container.lifecycle.draining = True
    drain.report(drain.unfinished_calls(server.abandoned) if server.abandoned else drain.DRAINED)
