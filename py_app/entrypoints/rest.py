"""The REST transport: the Litestar application and its lifespan (which also runs this process's gRPC server)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from py_app import __version__
from py_app.auth.controllers import AuthController, provide_principal
from py_app.bootstrap import Container, build_edge
from py_app.config import Settings, load_settings
from py_app.entrypoints import drain, rpc
from py_app.entrypoints.problems import EXCEPTION_HANDLERS
from py_app.health.controllers import HealthController
from py_app.infra.logs import configure_logging
from py_app.users.controllers import PublicUsersController, UsersController

logger = logging.getLogger("arcana.rest")

MAX_BODY_BYTES = 64 * 1024


def _provide(name: str) -> Provide:
    """Inject one service from the process's container (built in the lifespan)."""

    def provider(state: State) -> Any:
        return getattr(state.container, name)

    return Provide(provider, sync_to_thread=False)


def create_app(settings: Settings, *, with_grpc: bool = False, container: Container | None = None) -> Litestar:
    """The application. ``with_grpc`` also serves gRPC from this process, on the same event loop."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.container = built = container or build_edge(settings)
        await built.auth.prepare()
        try:
            if with_grpc:
                async with rpc.serving(built, settings.grpc_host, settings.grpc_port) as server:
                    drain.report(drain.SERVING)
                    yield
                    built.lifecycle.draining = True
                drain.report(drain.unfinished_calls(server.abandoned) if server.abandoned else drain.DRAINED)
            else:
                yield
        finally:
            built.lifecycle.draining = True
            await built.aclose()

    return Litestar(
        route_handlers=[HealthController, AuthController, UsersController, PublicUsersController],
        dependencies={
            "health": _provide("health"),
            "auth": _provide("auth"),
            "users": _provide("users"),
            "principal": Provide(provide_principal),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Arcana",
            version=__version__,
            description="User management and authentication. Errors are RFC 9457 problem details.",
            path="/schema",
            components=Components(
                security_schemes={
                    "BearerAuth": SecurityScheme(
                        type="http", scheme="bearer", bearer_format="JWT", description="Access token from login"
                    )
                }
            ),
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        debug=False,
        logging_config=None,  # logs are configured once, as JSON, by infra/logs.py
    )


def serve_app() -> Litestar:
    """Granian's factory: each worker process reads the settings and serves REST and gRPC."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, with_grpc=True)
