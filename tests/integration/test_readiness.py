"""Readiness tells an orchestrator the truth: a schema this version cannot use is not ready (naming `schema`
and the fix); a Redis outage, while nothing depends on Redis, degrades but keeps the service ready."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from alembic.script import ScriptDirectory

from py_app.config import Settings
from py_app.entrypoints.rest import create_app
from py_app.infra import migrations
from tests.faults.private import private_redis
from tests.integration.api.conftest import running

MIGRATE = "run `python -m py_app migrate`"


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan on the test's loop (asyncmy connections belong to the loop that made them)."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=cast(Any, app))
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
        yield client


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/health/ready")
    return response.status_code, response.json()


def revision_before_head() -> str:
    scripts = ScriptDirectory.from_config(migrations.alembic_config(""))
    head = scripts.get_revision(str(migrations.head_revision()))
    assert head is not None
    assert isinstance(head.down_revision, str)
    return head.down_revision


@pytest.mark.req("SRS-164")
async def test_a_schema_behind_this_version_is_not_ready_naming_schema_until_migrated(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    head = migrations.head_revision()
    async with serving(make_settings(database_url=database_url)) as client:
        status, body = await readiness(client)
        assert status == 503
        assert body["status"] == "fail"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["schema"] == f"fail: the database is not migrated; {MIGRATE}"

        older = revision_before_head()
        await asyncio.to_thread(migrations.upgrade, database_url, older)
        status, body = await readiness(client)
        assert status == 503
        assert body["checks"]["schema"] == (
            f"fail: the database schema is at revision {older}, this version needs {head}; {MIGRATE}"
        )

        await asyncio.to_thread(migrations.upgrade, database_url)  # no restart: readiness follows the schema
        status, body = await readiness(client)
        assert (status, body["status"], body["checks"]["schema"]) == (200, "ok", "ok")


@pytest.mark.req("SRS-164")
def test_a_revision_this_version_does_not_know_is_a_later_release_and_usable() -> None:
    head, known = migrations.head_revision(), migrations.known_revisions()
    assert migrations.schema_problem(head, head, known) is None
    assert migrations.schema_problem("9f3c1a7e0b42", head, known) is None  # migrated by a newer release
    assert migrations.schema_problem(None, head, known) == "the database is not migrated"


@pytest.mark.req("SRS-163")
@pytest.mark.redis
async def test_a_redis_outage_degrades_readiness_but_the_service_stays_ready(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)
    with private_redis(tmp_path / "redis") as redis:
        settings = make_settings(database_url=settings.database_url, redis_url=f"redis://127.0.0.1:{redis.port}/0")
        async with serving(settings) as client:
            assert await readiness(client) == (
                200,
                {"status": "ok", "checks": {"draining": "ok", "database": "ok", "schema": "ok", "redis": "ok"}},
            )

            redis.freeze()  # hung: answers nothing
            try:
                status, body = await readiness(client)
                registered = await client.post(
                    "/api/v1/auth/register",
                    json={"username": "during", "email": "during@example.com", "password": "correct horse battery"},
                )
            finally:
                redis.thaw()
            assert (status, body["status"]) == (200, "degraded"), body
            assert body["checks"]["redis"].startswith("fail"), body
            assert {name: body["checks"][name] for name in ("draining", "database", "schema")} == dict.fromkeys(
                ("draining", "database", "schema"), "ok"
            )
            assert registered.status_code == 201, registered.text  # nothing depends on Redis

            for _ in range(20):  # the client reconnects on its next command
                if (await readiness(client))[1]["status"] == "ok":
                    break
                await asyncio.sleep(0.2)
            assert (await readiness(client))[1]["checks"]["redis"] == "ok"

            redis.stop()  # gone: connections refused
            status, body = await readiness(client)
            assert (status, body["status"]) == (200, "degraded"), body
            assert body["checks"]["redis"].startswith("fail"), body
