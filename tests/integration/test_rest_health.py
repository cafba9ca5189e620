from __future__ import annotations

from collections.abc import Callable

import pytest
from litestar.testing import AsyncTestClient

from py_app.config import Settings
from py_app.entrypoints.rest import create_app

DEAD_MARIADB = "mysql+asyncmy://root@127.0.0.1:1/none"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def client(settings: Settings) -> AsyncTestClient:  # type: ignore[type-arg]
    return AsyncTestClient(create_app(settings))


@pytest.mark.req("SRS-006")
async def test_live_answers_even_when_the_database_is_down(make_settings: Callable[..., Settings]) -> None:
    async with client(make_settings(database_url=DEAD_MARIADB)) as http:
        response = await http.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.req("SRS-007")
async def test_ready_when_the_database_answers(make_settings: Callable[..., Settings]) -> None:
    async with client(make_settings()) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"draining": "ok", "database": "ok"}}
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
async def test_ready_checks_redis_when_configured(make_settings: Callable[..., Settings], redis_url: str) -> None:
    async with client(make_settings(redis_url=redis_url)) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"


@pytest.mark.req("SRS-007")
async def test_not_ready_names_redis_when_it_is_down(make_settings: Callable[..., Settings]) -> None:
    async with client(make_settings(redis_url=DEAD_REDIS)) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"].startswith("fail")
    assert checks["database"] == "ok"


@pytest.mark.req("SRS-007")
async def test_not_ready_while_draining(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
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
