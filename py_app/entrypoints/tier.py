"""The runner of an internal tier (layered mode) or service (microservices mode): one process serving its
ports over internal gRPC. The microservices mode's ``auth`` and ``users`` services run here too.

``repository`` serves the store ports and is the only process of the topology that opens the database;
``service`` serves the use cases over gRPC clients of the repository tier and runs the background jobs
(unless ``ARCANA_JOBS=off``). Each one's gRPC health follows its readiness (the repository: database and
schema; the service: the repository tier), which is what the tier in front of it reports as its own.
Every call but gRPC health must carry a service token of the calling tier's role (``infra.service_auth``).
SIGTERM or SIGINT drains it (in-flight calls get ``ARCANA_SHUTDOWN_GRACE``) and it exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from py_app.bootstrap import TierContainer, prepare_keys
from py_app.config import Settings, resolve_internal_secret
from py_app.entrypoints import heap
from py_app.entrypoints.listeners import claimed, metrics_address, metrics_endpoint
from py_app.entrypoints.rpc import SERVER_OPTIONS
from py_app.infra import jobs, remote, tracing
from py_app.infra.service_auth import CALLERS, ServiceCredentialInterceptor

logger = logging.getLogger("arcana.tier")
Builder = Callable[[Settings], TierContainer]
HEALTH_REFRESH_SECONDS = 2.0


def run(tier: str, build: Builder, settings: Settings, callers: frozenset[str] | None = None) -> int:
    """Serve the ``Repository`` or ``Services`` tier until SIGINT or SIGTERM; ``callers``: the roles admitted
    (default: the tier's callers in the layered mode)."""
    prepare_keys(settings)
    logger.info("starting", extra={"grpc": f"{settings.grpc_host}:{settings.grpc_port}", "tier": tier})
    addresses = [("gRPC", settings.grpc_host, settings.grpc_port), *metrics_address(settings)]
    with claimed(addresses), metrics_endpoint(settings), tracing.configured(settings.otel_endpoint):
        return asyncio.run(serve_until_signalled(tier, build, settings, callers or CALLERS[tier]))


async def serve_until_signalled(tier: str, build: Builder, settings: Settings, callers: frozenset[str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with build(settings) as container, contextlib.AsyncExitStack() as running:
        for warm_up in container.warm_up:
            await warm_up()
        if settings.jobs and container.jobs:
            await running.enter_async_context(jobs.running(container.jobs, settings.shutdown_grace))
        # Only the callers' roles may call (a service token of one); health stays open for probes.
        credentials = ServiceCredentialInterceptor(resolve_internal_secret(settings), callers)
        server = grpc.aio.server(options=SERVER_OPTIONS, maximum_concurrent_rpcs=1024, interceptors=[credentials])
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        remote.add_servicer(server, tier, container.ports)
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        try:
            server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot bind gRPC to {address}: {exc}") from None
        await server.start()
        logger.info("tier serving", extra={"address": address, "tier": tier})
        follow = asyncio.create_task(_follow_readiness(container, health_servicer, stop))
        heap.freeze_startup()
        await stop.wait()
        container.lifecycle.draining = True
        await follow
        await health_servicer.enter_graceful_shutdown()
        await server.stop(settings.shutdown_grace)
    logger.info("stopped")
    return 0


async def _follow_readiness(container: TierContainer, servicer: health.aio.HealthServicer, stop: asyncio.Event) -> None:
    """SERVING while this tier is ready (the callers' readiness follows it)."""
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
