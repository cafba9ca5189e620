"""A locked database answers 503 / UNAVAILABLE within ARCANA_DB_TIMEOUT, on both protocols, and works again after."""

from __future__ import annotations

import sqlite3
import time

import grpc
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from py_app.entrypoints import rpc
from tests.integration.api.conftest import OpenApi

TIMEOUT = 1.0
BOUND = TIMEOUT + 1.5  # the timeout and room for a loaded machine
PASSWORD = "correct horse battery"


@pytest.mark.req("SRS-161")
async def test_a_locked_sqlite_database_answers_503_and_unavailable_on_both_protocols(
    open_api: OpenApi,
) -> None:
    async with open_api(db_timeout=TIMEOUT, with_admin=False) as api:
        server = await rpc.start_server(api.app.state.container, "127.0.0.1", 0)
        try:
            path = api.settings.effective_database_url.split("///", 1)[1]
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                began = time.monotonic()
                response = await api.client.post(
                    "/api/v1/auth/register",
                    json={"username": "locked", "email": "locked@example.com", "password": PASSWORD},
                )
                rest_seconds = time.monotonic() - began
                async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                    began = time.monotonic()
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await auth_pb2_grpc.AuthServiceStub(channel).Register(
                            auth_pb2.RegisterRequest(username="locked2", email="l2@example.com", password=PASSWORD),
                            timeout=30,
                        )
                    grpc_seconds = time.monotonic() - began
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert response.json()["code"] == "unavailable"
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert max(rest_seconds, grpc_seconds) <= BOUND, (rest_seconds, grpc_seconds)
            again = await api.client.post(
                "/api/v1/auth/register",
                json={"username": "locked", "email": "locked@example.com", "password": PASSWORD},
            )
            assert again.status_code == 201, again.text
        finally:
            await server.stop(0)
