"""Traces of a real server process exported over OTLP/HTTP to a stand-in collector started by the test:
the caller's W3C traceparent becomes the parent of the server span, database statements its children."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from tests.conftest import free_port
from tests.e2e.support import STOP_SECONDS, migrate, start
from tests.support.otlp import Span, collector

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def in_trace(spans: list[Span], trace_id: str) -> list[Span]:
    return [span for span in spans if span.trace_id == trace_id]


def server_span(spans: list[Span], name: str, trace_id: str) -> Span | None:
    # Only a server span: the caller's client span of an internal call has the callee's name, and waiting for
    # the name alone let a test read the spans before the callee's process had exported its own.
    return next((span for span in in_trace(spans, trace_id) if span.name == name and span.server), None)


async def grpc_login(target: str, header: str, name: str, password: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        await auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username_or_email=name, password=password),
            metadata=[("traceparent", header)],
            timeout=20,
        )


@pytest.mark.req("SRS-138", "SDD-137")
def test_rest_and_grpc_calls_are_traced_under_the_callers_trace_with_database_children(tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, password = f"trace{suffix}", f"trace passphrase {suffix}"
    rest_header, rest_trace, rest_parent = traceparent()
    grpc_header, grpc_trace, grpc_parent = traceparent()
    migrate(tmp_path)
    with collector(free_port()) as sink:
        server = start(
            [sys.executable, "-m", "py_app", "serve"],
            tmp_path,
            ARCANA_OTEL_ENDPOINT=sink.url,
            OTEL_BSP_SCHEDULE_DELAY="200",  # the SDK's batch delay in ms: spans arrive while the test waits
        )
        try:
            server.wait_ready()
            made = httpx.post(
                f"{server.http}/api/v1/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": password},
                headers={"traceparent": rest_header},
                timeout=20,
            )
            assert made.status_code == 201, made.text
            asyncio.run(grpc_login(server.grpc, grpc_header, name, password))
            spans = sink.wait_for(
                lambda seen: (
                    server_span(seen, "POST /api/v1/auth/register", rest_trace) is not None
                    and server_span(seen, "arcana.v1.AuthService/Login", grpc_trace) is not None
                )
            )
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(STOP_SECONDS) == 0, server.output()[-3000:]
        finally:
            server.stop()

    for span_name, trace_id, parent, writes in (
        ("POST /api/v1/auth/register", rest_trace, rest_parent, "db INSERT"),
        ("arcana.v1.AuthService/Login", grpc_trace, grpc_parent, "db SELECT"),
    ):
        top = server_span(spans, span_name, trace_id)
        assert top is not None, f"no span {span_name!r} in the caller's trace: {[s.name for s in spans][:40]}"
        assert top.parent_span_id == parent, "the caller's traceparent is not the server span's parent"
        children = [span for span in in_trace(spans, trace_id) if span.parent_span_id == top.span_id]
        assert writes in {child.name for child in children}, [child.name for child in children]
        assert all(child.name.startswith("db ") for child in children), [child.name for child in children]
        assert {child.attributes["db.system.name"] for child in children} == {"sqlite"}
    register = server_span(spans, "POST /api/v1/auth/register", rest_trace)
    assert register is not None
    assert (register.attributes["http.route"], register.attributes["http.response.status_code"]) == (
        "/api/v1/auth/register",
        201,
    )
    login = server_span(spans, "arcana.v1.AuthService/Login", grpc_trace)
    assert login is not None
    assert login.attributes["rpc.grpc.status_code"] == "OK"
    untraced = [span for span in spans if span.name.startswith("db ") and not span.parent_span_id]
    assert not untraced, "database statements outside a request (background jobs) made traces of their own"
    assert password not in str(spans)


def _chain(spans: list[Span], trace_id: str, top: Span) -> list[str]:
    """The names from ``top`` down, following each span's first child that is not a database statement."""
    names, current = [top.name], top
    while True:
        below = [s for s in in_trace(spans, trace_id) if s.parent_span_id == current.span_id]
        hops = [s for s in below if not s.name.startswith("db ")]
        if not hops:
            return [*names, *sorted({s.name for s in below})]
        current = hops[0]
        names.append(current.name)


@pytest.mark.req("SRS-196", "SRS-232")
def test_the_callers_trace_crosses_every_tier_of_the_layered_mode_down_to_the_database(tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, password = f"hops{suffix}", f"trace passphrase {suffix}"
    header, trace_id, parent = traceparent()
    migrate(tmp_path)
    with collector(free_port()) as sink:
        up = start(
            [sys.executable, "-m", "py_app", "up", "--mode", "layered"],
            tmp_path,
            ARCANA_OTEL_ENDPOINT=sink.url,
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        try:
            deadline = time.monotonic() + 90
            while "ready: layered" not in up.output():
                assert up.process.poll() is None, up.output()[-3000:]
                assert time.monotonic() < deadline, up.output()[-3000:]
                time.sleep(0.2)
            edge = re.search(r"^edge-1\s+pid \d+\s+grpc \S+\s+http (\S+)$", up.output(), re.M)
            assert edge is not None, up.output()
            made = httpx.post(
                f"{edge[1]}/api/v1/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": password},
                headers={"traceparent": header},
                timeout=30,
            )
            assert made.status_code == 201, made.text
            me_header, me_trace, _ = traceparent()
            me = httpx.get(
                f"{edge[1]}/api/v1/auth/me",
                headers={"traceparent": me_header, "Authorization": f"Bearer {made.json()['access_token']}"},
                timeout=30,
            )
            assert me.status_code == 200, me.text
            user_id = me.json()["id"]

            def named(seen: list[Span]) -> set[str]:
                return {s.name for s in in_trace(seen, me_trace) if s.attributes.get("user.id") == user_id}

            # Each tier's process exports its spans on its own, in batches: wait for every span the assertions
            # read (the repository tier's span of `me` can come a batch after its span of `authenticate`).
            spans = sink.wait_for(
                lambda seen: (
                    (top := server_span(seen, "POST /api/v1/auth/register", trace_id)) is not None
                    and any(name.startswith("db ") for name in _chain(seen, trace_id, top)[5:])
                    and {"GET /api/v1/auth/me", "arcana.internal.v1.Services/AuthUseCases.me"} <= named(seen)
                    and any(name.startswith("arcana.internal.v1.Repository/") for name in named(seen))
                )
            )
            up.process.send_signal(signal.SIGTERM)
            assert up.process.wait(STOP_SECONDS * 2) == 0, up.output()[-3000:]
        finally:
            up.stop()

    top = server_span(spans, "POST /api/v1/auth/register", trace_id)
    assert top is not None, [s.name for s in spans][:40]
    assert top.parent_span_id == parent
    hops = _chain(spans, trace_id, top)
    # edge server span -> its call to the service tier -> the service tier's server span -> its call to the
    # repository tier -> the repository's server span -> the statements it ran
    assert hops[1].startswith("arcana.internal.v1.Services/AuthUseCases."), hops
    assert hops[2] == hops[1], hops  # the callee's server span, under the caller's client span
    assert hops[3].startswith("arcana.internal.v1.Repository/"), hops
    assert hops[4] == hops[3], hops
    assert any(name.startswith("db ") for name in hops[5:]), hops
    # The verified caller names the spans of its request (issue 13.4); the call that verifies names nobody yet,
    # and a public call's spans no one at all.
    spans_named = named(spans)
    assert {"GET /api/v1/auth/me", "arcana.internal.v1.Services/AuthUseCases.me"} <= spans_named, spans_named
    assert any(name.startswith("arcana.internal.v1.Repository/") for name in spans_named), spans_named
    assert "arcana.internal.v1.Services/AuthUseCases.authenticate" not in spans_named, spans_named
    assert not [s.name for s in in_trace(spans, trace_id) if "user.id" in s.attributes]
    untraced = [s.name for s in spans if not s.parent_span_id and s.name.startswith(("arcana.internal.", "db "))]
    assert not untraced, "background jobs' internal calls or statements made traces of their own"
    assert password not in str(spans)
