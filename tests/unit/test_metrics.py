"""What the services record through the metrics port, and what the Prometheus adapter makes of it."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from py_app.auth.models import ClientInfo
from py_app.config import SettingsError, load_settings
from py_app.core.errors import RateLimited, Unauthenticated
from py_app.core.identity import Principal
from py_app.infra.cache import InProcessSessionCache
from py_app.infra.counters import FailoverCounters, InProcessCounters
from py_app.infra.metrics import MeteredHasher, MeteredSessionCache, observe_pool
from py_app.infra.prometheus import NAMES, PrometheusMetrics
from tests.fakes import FixedClock, PlainHasher, RecordingMetrics
from tests.unit.test_auth_service import PASSWORD, Rig, register

ROOT = Path(__file__).resolve().parents[2]
REST = ClientInfo(user_agent="pytest", ip="127.0.0.1", transport="rest")
GRPC = ClientInfo(user_agent="pytest", ip="127.0.0.1", transport="grpc")


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.mark.req("SRS-132")
async def test_logins_are_counted_by_result_and_a_lock_once(metrics: RecordingMetrics) -> None:
    rig = Rig(metrics=metrics)
    await register(rig)
    await rig.auth.login("alice", PASSWORD, REST)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await rig.auth.login("alice", "wrong password!", REST)
    with pytest.raises(RateLimited):
        await rig.auth.login("alice", PASSWORD, REST)  # locked: refused before any hashing
    assert metrics.counts["login", "success"] == 1
    assert metrics.counts["login", "failure"] == 5
    assert metrics.counts["login", "limited"] == 1
    assert metrics.counts["lockout",] == 1
    assert metrics.counts["limited", "login_account"] == 1
    assert (metrics.counts["issued", "register"], metrics.counts["issued", "login"]) == (1, 1)


@pytest.mark.req("SRS-132")
async def test_refreshes_are_counted_by_outcome_and_reuse_on_its_own(metrics: RecordingMetrics) -> None:
    rig = Rig(grace=10, metrics=metrics)
    _, _, refresh = await register(rig)
    await rig.auth.refresh(refresh, REST)
    await rig.auth.refresh(refresh, REST)  # a second tab within the grace
    rig.clock.advance(11)
    with pytest.raises(Unauthenticated):
        await rig.auth.refresh(refresh, REST)  # after the grace: reuse, the session ends
    with pytest.raises(Unauthenticated):
        await rig.auth.refresh("not-a-token", REST)
    assert metrics.counts["refresh", "rotated"] == 1
    assert metrics.counts["refresh", "replayed"] == 1
    assert metrics.counts["refresh", "reused"] == 1
    assert metrics.counts["refresh", "invalid"] == 1
    assert metrics.counts["reuse",] == 1
    assert metrics.counts["issued", "refresh"] == 2


@pytest.mark.req("SRS-132")
async def test_token_checks_are_counted_by_result_and_transport(metrics: RecordingMetrics) -> None:
    rig = Rig(metrics=metrics)
    user_id, access, _ = await register(rig)
    await rig.auth.authenticate(access, REST)
    await rig.auth.authenticate(access, GRPC)
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate("garbage", GRPC)
    principal = await rig.auth.authenticate(access, REST)
    await rig.auth.logout(principal)
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate(access, REST)
    assert metrics.counts["verified", "valid", "rest"] == 2
    assert metrics.counts["verified", "valid", "grpc"] == 1
    assert metrics.counts["verified", "invalid", "grpc"] == 1
    assert metrics.counts["verified", "session_ended", "rest"] == 1
    assert not any(user_id in key for key in metrics.counts)  # no label ever carries the user


@pytest.mark.req("SRS-134")
async def test_redis_failing_and_answering_again_show_in_the_metrics(metrics: RecordingMetrics) -> None:
    class FlakyRedis(InProcessCounters):
        down = True

        async def hit(self, key: str, window: int, now: datetime) -> tuple[int, int]:
            if self.down:
                raise RedisConnectionError("gone")
            return await super().hit(key, window, now)

    redis = FlakyRedis()
    counters = FailoverCounters(redis, InProcessCounters(), metrics)
    now = FixedClock().now()
    await counters.hit("a", 60, now)
    await counters.hit("a", 60, now)
    assert metrics.counts["fallback", True] == 2
    assert metrics.counts["fallback", False] == 0
    redis.down = False
    await counters.hit("a", 60, now)
    await counters.hit("a", 60, now)
    assert metrics.counts["fallback", False] == 1  # said once, when Redis came back


@pytest.mark.req("SRS-134")
async def test_session_cache_lookups_count_hits_and_misses(metrics: RecordingMetrics) -> None:
    cache = MeteredSessionCache(InProcessSessionCache(ttl=60), metrics)
    principal = Principal("u", "s", "user")
    assert await cache.get("s") is None
    await cache.put(principal, await cache.stamp("s", "u"))
    assert await cache.get("s") == principal
    assert (metrics.counts["cache", "session", "miss"], metrics.counts["cache", "session", "hit"]) == (1, 1)


@pytest.mark.req("SRS-132")
async def test_every_hash_and_verify_is_timed(metrics: RecordingMetrics) -> None:
    hasher = MeteredHasher(PlainHasher(), metrics)
    encoded = await hasher.hash(PASSWORD)
    assert await hasher.verify(encoded, PASSWORD)
    assert [operation for operation, _ in metrics.timings] == ["hash", "verify"]
    assert all(seconds >= 0 for _, seconds in metrics.timings)


def exercised() -> PrometheusMetrics:
    """An adapter (memory storage, its own registry) that has recorded one of everything."""
    adapter = PrometheusMetrics(CollectorRegistry())
    adapter.http_request("GET", "/api/v1/users/{user_id}", 200, 0.004)
    adapter.rpc_call("arcana.v1.AuthService", "Login", "UNAUTHENTICATED", 0.03)
    adapter.login("success")
    adapter.lockout()
    adapter.token_issued("login")
    adapter.refresh("rotated")
    adapter.refresh_reuse()
    adapter.token_verification("valid", "grpc")
    adapter.rate_limited("login_address")
    adapter.password_hash("verify", 0.021)
    adapter.cache_lookup("session", hit=True)
    adapter.pool_size(10)
    adapter.pool_checked_out(1)
    adapter.counters_fallback(degraded=True)
    return adapter


@pytest.mark.req("SRS-131")
@pytest.mark.req("SRS-132")
def test_the_prometheus_adapter_names_and_labels() -> None:
    registry = exercised().registry
    value = registry.get_sample_value
    route = {"method": "GET", "route": "/api/v1/users/{user_id}"}
    assert value("arcana_http_requests_total", {**route, "status": "200"}) == 1
    assert value("arcana_http_request_duration_seconds_bucket", {**route, "le": "0.005"}) == 1
    assert value("arcana_http_request_duration_seconds_bucket", {**route, "le": "0.0025"}) == 0
    labels = {"service": "arcana.v1.AuthService", "method": "Login", "code": "UNAUTHENTICATED"}
    assert value("arcana_grpc_requests_total", labels) == 1
    assert value("arcana_auth_login_attempts_total", {"result": "success"}) == 1
    assert value("arcana_auth_lockouts_total") == 1
    assert value("arcana_auth_tokens_issued_total", {"grant": "login"}) == 1
    assert value("arcana_auth_refresh_total", {"result": "rotated"}) == 1
    assert value("arcana_auth_refresh_reuse_total") == 1
    assert value("arcana_auth_token_verifications_total", {"result": "valid", "transport": "grpc"}) == 1
    assert value("arcana_rate_limited_total", {"policy": "login_address"}) == 1
    assert value("arcana_password_hash_duration_seconds_count", {"operation": "verify"}) == 1
    assert value("arcana_cache_requests_total", {"cache": "session", "result": "hit"}) == 1
    assert (value("arcana_db_pool_size"), value("arcana_db_pool_checked_out")) == (10, 1)
    assert (value("arcana_counters_fallback_total"), value("arcana_counters_degraded")) == (1, 1)


def exported_names(registry: CollectorRegistry) -> set[str]:
    """Family names as a query names them: counters with ``_total``, histograms by their family name."""
    return {
        family.name + "_total" if family.type == "counter" else family.name
        for family in registry.collect()
        if family.name.startswith("arcana_")
    }


def test_the_list_of_exported_names_is_the_adapters_own() -> None:
    assert exported_names(exercised().registry) == set(NAMES)


QUERY_NAME = re.compile(r"\barcana_[a-z_]+")


def test_every_dashboard_query_names_a_metric_the_service_exports() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/arcana.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    queries += [variable["query"] for variable in dashboard["templating"]["list"]]
    registry = exercised().registry
    # What a query may name: each sample the adapter writes (counters' _total, histograms' _bucket/_count/_sum,
    # gauges), and a histogram by its family name.
    samples = {sample.name for family in registry.collect() for sample in family.samples}
    families = {family.name for family in registry.collect() if family.type == "histogram"}
    named = {name for query in queries for name in QUERY_NAME.findall(query)}
    assert named - (samples | families) == set()
    covered = {name.removesuffix("_bucket") for name in named}
    assert covered == set(NAMES)  # and every metric has its panel


@pytest.mark.req("SRS-130")
@pytest.mark.parametrize("value", ["", "off", "OFF"])
def test_metrics_are_off_unless_a_port_is_given(value: str) -> None:
    assert load_settings({"ARCANA_METRICS_PORT": value}).metrics_port is None
    assert load_settings({}).metrics_port is None
    assert load_settings({"ARCANA_METRICS_PORT": "9464"}).metrics_port == 9464


@pytest.mark.req("SRS-130")
@pytest.mark.parametrize("variable", ["ARCANA_HTTP_PORT", "ARCANA_GRPC_PORT"])
def test_metrics_never_share_a_public_port(variable: str) -> None:
    with pytest.raises(SettingsError, match="ARCANA_METRICS_PORT must differ"):
        load_settings({variable: "9464", "ARCANA_METRICS_PORT": "9464"})


@pytest.mark.req("SRS-134")
async def test_a_checkout_whose_ping_and_reconnect_fail_leaves_the_checked_out_gauge_where_it_was(
    tmp_path: Path, metrics: RecordingMetrics
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'pool.db'}", pool_pre_ping=True)
    deltas: list[int] = []
    metrics.pool_checked_out = deltas.append  # type: ignore[method-assign,assignment]
    observe_pool(engine, metrics)
    try:
        async with engine.connect():
            pass
        assert deltas == [1, -1]
        dialect: Any = engine.sync_engine.dialect
        dialect.do_ping = lambda _connection: False  # the pooled connection fails its ping
        folder.rename(tmp_path / "gone")  # and the reconnect cannot open the file
        with pytest.raises(DBAPIError):
            async with engine.connect():
                pass
        assert deltas == [1, -1]  # the failed checkout was never counted out, so it is not counted back in
    finally:
        await engine.dispose()
