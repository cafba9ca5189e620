"""The repository tier's runner (layered mode): one process serving the store ports over internal gRPC.

It is the only process of the layered topology that opens the database. Its gRPC health follows its
readiness (database and schema), which is what the tiers that call it report as theirs. SIGTERM or
SIGINT drains it (in-flight calls get ``ARCANA_SHUTDOWN_GRACE``) and it exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from py_app.bootstrap import RepositoryContainer, build_repository
from py_app.config import Settings
from py_app.entrypoints.listeners import claimed, metrics_address, metrics_endpoint
from py_app.entrypoints.rpc import SERVER_OPTIONS
from py_app.infra import remote

logger = logging.getLogger("arcana.repository")
HEALTH_REFRESH_SECONDS = 2.0


def run(settings: Settings) -> int:
    """Serve the repository tier until SIGINT or SIGTERM."""
    logger.info("starting", extra={"grpc": f"{settings.grpc_host}:{settings.grpc_port}", "tier": "repository"})
    addresses = [("gRPC", settings.grpc_host, settings.grpc_port), *metrics_address(settings)]
    with claimed(addresses), metrics_endpoint(settings):
        return asyncio.run(serve_until_signalled(settings))


async def serve_until_signalled(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with build_repository(settings) as container:
        server = grpc.aio.server(options=SERVER_OPTIONS, maximum_concurrent_rpcs=1024)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        remote.add_servicer(server, "Repository", container.ports)
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        try:
            server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot bind gRPC to {address}: {exc}") from None
        await server.start()
        logger.info("repository serving", extra={"address": address})
        follow = asyncio.create_task(_follow_readiness(container, health_servicer, stop))
        await stop.wait()
        container.lifecycle.draining = True
        await follow
        await health_servicer.enter_graceful_shutdown()
        await server.stop(settings.shutdown_grace)
    logger.info("stopped")
    return 0


async def _follow_readiness(
    container: RepositoryContainer, servicer: health.aio.HealthServicer, stop: asyncio.Event
) -> None:
    """SERVING while the database and schema checks pass (the callers' readiness follows it)."""
    last: str | None = None
    while not stop.is_set():
        readiness = await container.health.readiness()
        status = (
            health_pb2.HealthCheckResponse.SERVING if readiness.ready else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await servicer.set("", status)
        if readiness.status != last:
            log = logger.info if readiness.ready else logger.warning
            log("readiness changed", extra={"status": readiness.status})
            last = readiness.status
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEALTH_REFRESH_SECONDS)
