"""Metrics on real server processes: two Granian workers (each with its gRPC server) recording, the runner
summing them on the management port; and the Redis-failover metric with a private Redis frozen and thawed."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from py_app.infra.db import SQLITE_POOL
from py_app.infra.prometheus import NAMES
from tests.conftest import free_port
from tests.e2e.support import STOP_SECONDS, Server, migrate, start
from tests.faults.private import private_redis

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
SERVE = [sys.executable, "-m", "py_app", "serve"]
PASSWORD = "quiet meadow lantern 37"
V1 = "/api/v1"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def serve(folder: Path, **env: str) -> tuple[Server, str]:
    """A migrated server with metrics on; returns it and its scrape URL."""
    port = free_port()
    settings = {
        "ARCANA_METRICS_PORT": str(port),
        "ARCANA_JWT_SECRET": "metrics-suite-secret-0123456789abcdefghijk",
        **env,
    }
    migrate(folder, **settings)
    server = start(SERVE, folder, **settings)
    server.wait_ready()
    return server, f"http://127.0.0.1:{port}/metrics"


def stop(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(STOP_SECONDS)
    server.stop()


def scrape(url: str) -> tuple[str, Samples]:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the server never recorded it (a counter not yet touched)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    server, url = serve(tmp_path, ARCANA_WORKERS="2")
    try:
        yield server, url
    finally:
        stop(server)


@pytest.mark.req("SRS-130")
@pytest.mark.req("SRS-131")
@pytest.mark.req("SRS-132")
@pytest.mark.req("SRS-133")
def test_two_workers_are_summed_by_route_template_and_rpc_with_no_identity_in_a_label(
    two_workers: tuple[Server, str],
) -> None:
    server, url = two_workers
    name = f"metrics{uuid.uuid4().hex[:8]}"
    email = f"{name}@example.com"
    _, before = scrape(url)
    # Each request on its own connection, so the kernel and Granian spread them over both workers.
    registered = httpx.post(
        f"{server.http}{V1}/auth/register",
        json={"username": name, "email": email, "password": PASSWORD},
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["user"]["id"]
    good = httpx.post(
        f"{server.http}{V1}/auth/login", json={"username_or_email": name, "password": PASSWORD}, timeout=30
    )
    bad = httpx.post(
        f"{server.http}{V1}/auth/login", json={"username_or_email": email, "password": "nope" * 3}, timeout=30
    )
    assert (good.status_code, bad.status_code) == (200, 401)
    tokens = good.json()
    refreshed = httpx.post(
        f"{server.http}{V1}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=30
    )
    assert refreshed.status_code == 200
    bearer = {"authorization": f"Bearer {refreshed.json()['access_token']}"}
    me = httpx.get(f"{server.http}{V1}/users/{user_id}", headers=bearer, timeout=30)
    missing = httpx.get(f"{server.http}/no/such/route/{user_id}", timeout=30)
    public = httpx.get(f"{server.http}/metrics", timeout=30)
    assert (me.status_code, missing.status_code, public.status_code) == (200, 404, 404)
    # Each gRPC call on its own channel (its own connection): SO_REUSEPORT spreads them too.
    with grpc.insecure_channel(server.grpc) as channel:
        login = auth_pb2.LoginRequest(username_or_email=name, password=PASSWORD)
        grpc_login = auth_pb2_grpc.AuthServiceStub(channel).Login(login, timeout=30)
    wrong = auth_pb2.LoginRequest(username_or_email=name, password="wrong password")
    with grpc.insecure_channel(server.grpc) as channel, pytest.raises(grpc.RpcError) as refused:
        auth_pb2_grpc.AuthServiceStub(channel).Login(wrong, timeout=30)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with grpc.insecure_channel(server.grpc) as channel:
        metadata = [("authorization", f"Bearer {grpc_login.access_token}")]
        assert (
            auth_pb2_grpc.AuthServiceStub(channel).Me(auth_pb2.MeRequest(), metadata=metadata, timeout=30).id == user_id
        )

    text, after = scrape(url)
    assert before.get(("arcana_auth_login_attempts_total", frozenset({("result", "success")}))) is None

    def http(route: str, method: str, status: int) -> float:
        return value(after, "arcana_http_requests_total", method=method, route=route, status=str(status))

    assert http("/api/v1/auth/register", "POST", 201) == 1
    assert http("/api/v1/auth/login", "POST", 200) == 1
    assert http("/api/v1/auth/login", "POST", 401) == 1
    assert http("/api/v1/auth/refresh", "POST", 200) == 1
    assert http("/api/v1/users/{user_id}", "GET", 200) == 1
    assert http("unmatched", "GET", 404) == 2  # the unknown path and the public port's /metrics
    login_timed = value(after, "arcana_http_request_duration_seconds_count", method="POST", route="/api/v1/auth/login")
    assert login_timed == 2

    def rpc(method: str, code: str) -> float:
        return value(after, "arcana_grpc_requests_total", service="arcana.v1.AuthService", method=method, code=code)

    assert (rpc("Login", "OK"), rpc("Login", "UNAUTHENTICATED"), rpc("Me", "OK")) == (1, 1, 1)
    assert (
        value(after, "arcana_grpc_request_duration_seconds_count", service="arcana.v1.AuthService", method="Login") == 2
    )

    assert value(after, "arcana_auth_login_attempts_total", result="success") == 2
    assert value(after, "arcana_auth_login_attempts_total", result="failure") == 2
    assert value(after, "arcana_auth_tokens_issued_total", grant="register") == 1
    assert value(after, "arcana_auth_tokens_issued_total", grant="login") == 2
    assert value(after, "arcana_auth_tokens_issued_total", grant="refresh") == 1
    assert value(after, "arcana_auth_refresh_total", result="rotated") == 1
    assert value(after, "arcana_auth_token_verifications_total", result="valid", transport="rest") == 1
    assert value(after, "arcana_auth_token_verifications_total", result="valid", transport="grpc") == 1
    # Both workers hashed a dummy password at start, then the registration hashed one; four logins verified.
    assert value(after, "arcana_password_hash_duration_seconds_count", operation="hash") == 3
    assert value(after, "arcana_password_hash_duration_seconds_count", operation="verify") == 4
    # Each worker's SQLite write pool is SQLITE_POOL connections: the sum of two processes, none left checked out.
    assert (value(after, "arcana_db_pool_size"), value(after, "arcana_db_pool_checked_out")) == (2 * SQLITE_POOL, 0)

    exported = {
        family.name + "_total" if family.type == "counter" else family.name
        for family in text_string_to_metric_families(text)
        if family.name.startswith("arcana_")
    }
    assert exported <= set(NAMES)  # nothing the dashboard test does not know about

    secrets = [email, name, user_id, tokens["access_token"], tokens["refresh_token"], grpc_login.access_token]
    leaked = [secret[:12] for secret in secrets if secret in text]
    assert leaked == [], leaked
    assert "/no/such/route" not in text


@pytest.mark.req("SRS-130")
def test_the_grpc_role_sums_its_spawned_workers(tmp_path: Path) -> None:
    port = free_port()
    settings = {"ARCANA_ROLE": "grpc", "ARCANA_WORKERS": "2", "ARCANA_METRICS_PORT": str(port)}
    migrate(tmp_path, **settings)
    server = start(SERVE, tmp_path, **settings)
    try:
        wrong = auth_pb2.LoginRequest(username_or_email="nobody-at-all", password="not the password")
        for _ in range(4):  # each on its own connection: SO_REUSEPORT spreads them over the two processes
            with grpc.insecure_channel(server.grpc) as channel:
                grpc.channel_ready_future(channel).result(timeout=120)
                with pytest.raises(grpc.RpcError):
                    auth_pb2_grpc.AuthServiceStub(channel).Login(wrong, timeout=30)
        _, samples = scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        stop(server)
    labels = {"service": "arcana.v1.AuthService", "method": "Login", "code": "UNAUTHENTICATED"}
    assert value(samples, "arcana_grpc_requests_total", **labels) == 4
    assert value(samples, "arcana_auth_login_attempts_total", result="failure") == 4
    assert value(samples, "arcana_password_hash_duration_seconds_count", operation="hash") == 2  # a dummy each


def test_the_metrics_listener_is_not_there_unless_configured(tmp_path: Path) -> None:
    port = free_port()
    migrate(tmp_path)
    server = start(SERVE, tmp_path)
    try:
        server.wait_ready()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert "metrics serving" not in server.output()
    finally:
        stop(server)


@pytest.mark.req("SRS-134")
def test_a_frozen_redis_moves_the_failover_metrics_and_its_return_clears_them(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as redis:
        server, url = serve(tmp_path / "one", ARCANA_REDIS_URL=f"redis://127.0.0.1:{redis.port}/0")
        try:

            def wrong_login() -> None:
                body = {"username_or_email": "nobody-here", "password": "not the password"}
                assert httpx.post(f"{server.http}{V1}/auth/login", json=body, timeout=60).status_code == 401

            wrong_login()
            _, healthy = scrape(url)
            redis.freeze()  # it stops answering: every counter operation times out and counts in-process
            try:
                wrong_login()
                _, frozen = scrape(url)
            finally:
                redis.thaw()
            wrong_login()
            _, back = scrape(url)
        finally:
            stop(server)
    assert (value(healthy, "arcana_counters_fallback_total"), value(healthy, "arcana_counters_degraded")) == (0, 0)
    assert value(frozen, "arcana_counters_fallback_total") > 0
    assert value(frozen, "arcana_counters_degraded") == 1
    assert value(back, "arcana_counters_fallback_total") == value(frozen, "arcana_counters_fallback_total")
    assert value(back, "arcana_counters_degraded") == 0
    assert "redis unavailable" in server.output()
