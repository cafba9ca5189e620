"""Reference-style gRPC: a synchronous grpc server on a thread pool, the same read, no authentication.

BENCH_DB_URL=sqlite:///var/arcana.db python -m benchmarks.baselines.grpc_sync --port 50053
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from benchmarks.baselines.store import get_user
from py_app._proto.arcana.v1 import common_pb2, users_pb2, users_pb2_grpc

THREADS = 8


class Users(users_pb2_grpc.UserServiceServicer):
    def GetUser(self, request: users_pb2.GetUserRequest, context: Any) -> common_pb2.User:
        row = get_user(request.id)
        if row is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "No such user.")
        stamps = {}
        for key in ("created_at", "updated_at", "last_login_at"):
            if row[key] is not None:
                stamp = timestamp_pb2.Timestamp()
                stamp.FromDatetime(row.pop(key).replace(tzinfo=UTC))
                stamps[key] = stamp
            else:
                row.pop(key)
        row["is_verified"] = bool(row["is_verified"])
        return common_pb2.User(**row, **stamps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    server = grpc.server(ThreadPoolExecutor(max_workers=THREADS))
    users_pb2_grpc.add_UserServiceServicer_to_server(Users(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
