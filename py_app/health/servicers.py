"""gRPC servicers of the health domain: build information, and the standard grpc.health.v1 (wired in rpc.py)."""

from __future__ import annotations

import os

import grpc
from grpc_health.v1 import health, health_pb2

from py_app import __version__
from py_app._proto.arcana.v1 import info_pb2, info_pb2_grpc


class InfoServicer(info_pb2_grpc.InfoServiceServicer):
    def __init__(self, rust_core_version: str) -> None:
        self._rust_core_version = rust_core_version

    async def GetInfo(  # noqa: N802 - the name is the RPC's
        self, request: info_pb2.GetInfoRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> info_pb2.GetInfoResponse:
        return info_pb2.GetInfoResponse(version=__version__, rust_core_version=self._rust_core_version, pid=os.getpid())


class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]  # grpcio-health-checking ships no types
    """grpcio's asyncio health servicer, plus the `List` its proto declares but it leaves out: without it a
    client's `List` got UNIMPLEMENTED with "Unexpected <class 'NotImplementedError'>" (found by the gRPC fuzz)."""

    async def List(  # noqa: N802 - the name is the RPC's
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> health_pb2.HealthListResponse:
        statuses = dict(self._server_status)  # a snapshot: the proto calls List non-atomic anyway
        return health_pb2.HealthListResponse(
            statuses={name: health_pb2.HealthCheckResponse(status=status) for name, status in statuses.items()}
        )
