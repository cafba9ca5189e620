"""The gRPC ceiling: one trivial grpc.aio handler for UserService/GetUser, the record from memory.

BENCH_RECORD=record.json python -m benchmarks.ceilings.grpc_app --port 50052
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc

from benchmarks.ceilings.record import load, message
from py_app._proto.arcana.v1 import common_pb2, users_pb2, users_pb2_grpc


class TrivialUsers(users_pb2_grpc.UserServiceServicer):
    def __init__(self) -> None:
        self._user = message(load())

    async def GetUser(self, request: users_pb2.GetUserRequest, context: Any) -> common_pb2.User:
        return self._user


async def serve(port: int) -> None:
    server = grpc.aio.server()
    users_pb2_grpc.add_UserServiceServicer_to_server(TrivialUsers(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
