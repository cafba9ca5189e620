"""The gRPC transport: one grpc.aio server per process, over the same container as REST."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from py_app._proto.arcana.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    info_pb2,
    info_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)
from py_app.audit.servicers import AuditServicer
from py_app.auth.servicers import AuthServicer
from py_app.bootstrap import Container
from py_app.entrypoints import drain
from py_app.entrypoints.rpc_support import GuardedRegistration, ServiceGuard
from py_app.health.models import Readiness
from py_app.health.servicers import HealthServicer, InfoServicer
from py_app.infra.security import core_version
from py_app.users.servicers import UserServicer

logger = logging.getLogger("arcana.rpc")

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
HEALTH_REFRESH_SECONDS = 5.0
SERVER_OPTIONS = [
    # Every process binds the same port and the kernel spreads connections (one process per core).
    ("grpc.so_reuseport", 1),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_concurrent_streams", 256),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 3),
]


class RpcServer:
    """A started grpc.aio server whose health status follows the service's readiness."""

    def __init__(
        self,
        server: grpc.aio.Server,
        health_servicer: health.aio.HealthServicer,
        guard: ServiceGuard,
        port: int,
    ) -> None:
        self.server = server
        self.port = port
        self._health = health_servicer
        self._guard = guard
        self._watch: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.abandoned = 0  # calls cut short by the last stop

    async def follow_readiness(self, container: Container) -> None:
        """Set the health status from readiness now, then keep it following (and log each change)."""
        first = await container.health.readiness()
        await self._report(first, None)
        self._watch = asyncio.create_task(self._follow_readiness(container, first), name="grpc-health")

    async def _follow_readiness(self, container: Container, last: Readiness) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), HEALTH_REFRESH_SECONDS)
            if self._stopping.is_set():
                return
            readiness = await container.health.readiness()
            await self._report(readiness, last)
            last = readiness

    async def _report(self, readiness: Readiness, last: Readiness | None) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING
        await self._health.set("", serving if readiness.ready else health_pb2.HealthCheckResponse.NOT_SERVING)
        if readiness.status != (last.status if last else "ok"):
            # The operator's one line on what changed: e.g. not ready until the schema is migrated.
            failing = {name: result for name, result in readiness.checks.items() if result != "ok"}
            log = logger.info if readiness.status == "ok" else logger.warning
            log("readiness changed", extra={"status": readiness.status, "failing": failing})

    async def stop(self, grace: float) -> int:
        """Report NOT_SERVING, stop accepting, let in-flight calls finish for up to ``grace`` seconds.

        Return (and log) how many calls were still running when the grace ran out: a forced drain.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self._watch is not None:
            # Let a probe in flight finish (each is bounded by the health service's timeout): a
            # database call torn mid-query leaves its driver thread answering a loop that has gone.
            self._stopping.set()
            await self._watch
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)
        # The work of calls whose callers left (or that the server just cancelled) runs on, shielded:
        # the same deadline covers it, before the pools close.
        self.abandoned = await self._guard.drain(max(0.0, deadline - loop.time()))
        if self.abandoned:
            drain.log_forced([drain.unfinished_calls(self.abandoned)], grace)
        return self.abandoned


async def start_server(container: Container, host: str, port: int) -> RpcServer:
    """Build, bind and start the server; raise OSError when the address cannot be bound."""
    guard = ServiceGuard(container.auth.authenticate, container.settings.trusted_networks, metrics=container.metrics)
    server = grpc.aio.server(options=SERVER_OPTIONS, maximum_concurrent_rpcs=1024)
    registration = GuardedRegistration(server, guard)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registration)
    info_pb2_grpc.add_InfoServiceServicer_to_server(InfoServicer(core_version()), registration)  # type: ignore[no-untyped-call]
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(container.auth, container.recovery), registration)  # type: ignore[no-untyped-call]
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(container.audit), registration)  # type: ignore[no-untyped-call]
    users_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(container.users), registration)  # type: ignore[no-untyped-call]
    if container.settings.reflection_enabled:
        names = (
            auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
            users_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,
            audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
            info_pb2.DESCRIPTOR.services_by_name["InfoService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        # What enable_server_reflection does for a grpc.aio server, registered through the guard.
        servicer = reflection.aio.ReflectionServicer(names)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, registration)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:  # grpcio raises instead of returning 0 in recent versions
        raise OSError(f"cannot bind gRPC to {host}:{port}: {exc}") from None
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {host}:{port}")
    await server.start()
    rpc = RpcServer(server, health_servicer, guard, bound)
    await rpc.follow_readiness(container)  # never SERVING before the first readiness check has passed
    logger.info("grpc serving", extra={"address": f"{host}:{bound}"})
    return rpc


@contextlib.asynccontextmanager
async def serving(container: Container, host: str, port: int) -> AsyncIterator[RpcServer]:
    rpc = await start_server(container, host, port)
    try:
        yield rpc
    finally:
        await rpc.stop(container.settings.shutdown_grace)
