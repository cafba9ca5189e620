"""Request ids over outgoing gRPC calls, and tracing that costs nothing when it is off."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import grpc
import pytest

from py_app.infra import request_id
from py_app.infra.request_id import RequestIdClientInterceptor
from tests.e2e.support import ROOT

SEEN_BY_SERVER: list[dict[str, str]] = []


async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    SEEN_BY_SERVER.append({key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)})
    return request


@pytest.mark.req("SDD-136")
async def test_an_outgoing_call_made_while_handling_a_request_carries_its_request_id() -> None:
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", {"Echo": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    SEEN_BY_SERVER.clear()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[RequestIdClientInterceptor()]) as ch:
            call = ch.unary_unary("/test.Echo/Echo")
            token = request_id.bind("hop-1")
            try:
                assert await call(b"one", metadata=(("authorization", "Bearer t"),), timeout=10) == b"one"
            finally:
                request_id.unbind(token)
            assert await call(b"two", timeout=10) == b"two"
    finally:
        await server.stop(None)
    first, second = SEEN_BY_SERVER
    assert (first["x-request-id"], first["authorization"]) == ("hop-1", "Bearer t")
    assert "x-request-id" not in second
    assert "traceparent" not in first, "tracing is off: no trace context is sent"


OFF_PROBE = """
import sys
from litestar.testing import TestClient
from py_app.config import load_settings
from py_app.entrypoints.rest import create_app
from py_app.infra import tracing

app = create_app(load_settings({"ARCANA_DATA_DIR": sys.argv[1]}))
with TestClient(app) as client:
    assert client.get("/health/ready").status_code == 200
    made = client.post(
        "/api/v1/auth/register",
        json={"username": "offprobe", "email": "offprobe@example.com", "password": "a long passphrase"},
        headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    assert made.status_code == 201, made.text
    assert made.headers["x-request-id"]
loaded = sorted(
    name for name in ("py_app.infra._otel", "opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http")
    if name in sys.modules
)
print("loaded:", loaded, "enabled:", tracing.enabled())
"""


@pytest.mark.req("SRS-139", "SDD-137")
def test_without_an_endpoint_requests_and_database_calls_load_no_tracing_sdk(tmp_path: Any) -> None:
    migrated = subprocess.run(
        [sys.executable, "-m", "py_app", "migrate"],
        cwd=ROOT,
        env={"ARCANA_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    probe = subprocess.run(
        [sys.executable, "-c", OFF_PROBE, str(tmp_path)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.strip().splitlines()[-1] == "loaded: [] enabled: False"
