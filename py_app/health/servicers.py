"""gRPC servicers of the health domain: build information (the standard grpc.health.v1 is wired in rpc.py)."""

from __future__ import annotations

import os

import grpc

from py_app import __version__
from py_app._proto.arcana.v1 import info_pb2, info_pb2_grpc


class InfoServicer(info_pb2_grpc.InfoServiceServicer):
    def __init__(self, rust_core_version: str) -> None:
        self._rust_core_version = rust_core_version

    async def GetInfo(  # noqa: N802 - the name is the RPC's
        self, request: info_pb2.GetInfoRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> info_pb2.GetInfoResponse:
        return info_pb2.GetInfoResponse(version=__version__, rust_core_version=self._rust_core_version, pid=os.getpid())
