from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from litestar.testing import AsyncTestClient

from py_app.config import Settings
from py_app.entrypoints.rest import create_app
from py_app.infra import migrations

DEAD_MARIADB = "mysql+asyncmy://root@127.0.0.1:1/none"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def client(settings: Settings) -> AsyncTestClient:  # type: ignore[type-arg]
    return AsyncTestClient(create_app(settings))


Migrated = Callable[..., Awaitable[Settings]]


@pytest.fixture
def migrated(make_settings: Callable[..., Settings]) -> Migrated:
    """Settings whose SQLite database is migrated, so only what a test breaks fails readiness."""

    async def factory(**overrides: object) -> Settings:
        settings = make_settings(**overrides)
        await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)
        return settings

    return factory


@pytest.mark.req("SRS-006")
async def test_live_answers_even_when_the_database_is_down(make_settings: Callable[..., Settings]) -> None:
    async with client(make_settings(database_url=DEAD_MARIADB)) as http:
        response = await http.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.req("SRS-007")
async def test_ready_when_the_database_answers(migrated: Migrated) -> None:
    async with client(await migrated()) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"draining": "ok", "database": "ok", "schema": "ok"}}
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.req("SRS-007")
async def test_not_ready_names_the_database_when_it_is_down(make_settings: Callable[..., Settings]) -> None:
    async with client(make_settings(database_url=DEAD_MARIADB)) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"].startswith("fail")
    assert body["checks"]["draining"] == "ok"


@pytest.mark.req("SRS-007")
@pytest.mark.redis
async def test_ready_checks_redis_when_configured(migrated: Migrated, redis_url: str) -> None:
    async with client(await migrated(redis_url=redis_url)) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"


@pytest.mark.req("SRS-007", "SRS-163")
async def test_degraded_but_ready_naming_redis_when_it_is_down(migrated: Migrated) -> None:
    async with client(await migrated(redis_url=DEAD_REDIS)) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 200  # nothing depends on Redis yet
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"].startswith("fail")
    assert body["checks"]["database"] == "ok"


@pytest.mark.req("SRS-007")
async def test_not_ready_while_draining(migrated: Migrated) -> None:
    app = create_app(await migrated())
    async with AsyncTestClient(app) as http:
        app.state.container.lifecycle.draining = True
        response = await http.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["draining"] == "fail: shutting down"


@pytest.mark.req("SRS-011")
@pytest.mark.req("SDD-007")
async def test_unknown_route_is_a_problem_document(make_settings: Callable[..., Settings]) -> None:
    async with client(make_settings()) as http:
        response = await http.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:arcana:problem:not_found"
    assert body["status"] == 404
    assert body["title"] == "Not Found"


@pytest.mark.req("SRS-011")
async def test_wrong_method_is_a_405_problem_with_allow(make_settings: Callable[..., Settings]) -> None:
    async with client(make_settings()) as http:
        response = await http.post("/health/live", content=b"{}")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert "GET" in response.headers["allow"]
    assert response.json()["type"] == "urn:arcana:problem:method_not_allowed"


@pytest.mark.req("SRS-011")
async def test_openapi_describes_the_health_routes(make_settings: Callable[..., Settings]) -> None:
    async with client(make_settings()) as http:
        schema = (await http.get("/schema/openapi.json")).json()
        ui = await http.get("/schema")
    assert schema["openapi"].startswith("3.1")
    assert {"/health/live", "/health/ready"} <= set(schema["paths"])
    assert "503" in schema["paths"]["/health/ready"]["get"]["responses"]
    assert ui.status_code == 200
