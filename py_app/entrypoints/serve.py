"""The edge process runner: Granian serves REST from N workers, each also serving gRPC on the same loop."""

from __future__ import annotations

import logging

from granian import Granian
from granian.constants import Interfaces, Loops

from py_app.bootstrap import prepare_keys
from py_app.config import Settings
from py_app.entrypoints import drain
from py_app.entrypoints.drain import KILL_MARGIN
from py_app.entrypoints.listeners import claimed, metrics_address, metrics_endpoint
from py_app.infra.logs import dict_config

logger = logging.getLogger("arcana.serve")


def serve(settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM, then drain: 0 when every worker finished its work within
    ``shutdown_grace`` seconds, 1 (logged as ``drain forced``) when one had to be cut short."""
    # Made (or checked) here, once, before the workers start: they must all sign with the same keys.
    prepare_keys(settings)
    logger.info(
        "starting",
        extra={
            "http": f"{settings.http_host}:{settings.http_port}",
            "grpc": f"{settings.grpc_host}:{settings.grpc_port}",
            "workers": settings.workers,
            "metrics": f"{settings.metrics_host}:{settings.metrics_port}" if settings.metrics_port else "off",
            "env": settings.env,
        },
    )
    addresses = [("HTTP", settings.http_host, settings.http_port), ("gRPC", settings.grpc_host, settings.grpc_port)]
    # The ports are claimed before any worker binds them with SO_REUSEPORT: they are this instance's alone.
    # Metrics are served by this process, summing what the workers it starts record.
    with claimed(addresses + metrics_address(settings)), metrics_endpoint(settings), drain.worker_reports() as reports:
        Granian(
            target="py_app.entrypoints.rest:serve_app",
            factory=True,
            address=settings.http_host,
            port=settings.http_port,
            interface=Interfaces.ASGI,
            workers=settings.workers,
            loop=Loops.asyncio,  # grpc.aio shares this loop; the stock asyncio loop is the one it supports
            log_level=settings.log_level,  # type: ignore[arg-type]
            log_dictconfig=dict_config(settings.log_level, settings.effective_log_format),
            workers_kill_timeout=int(settings.shutdown_grace) + KILL_MARGIN,
        ).serve()
        forced = reports.forced()
    if forced:
        drain.log_forced(forced, settings.shutdown_grace)
        return 1
    return 0
