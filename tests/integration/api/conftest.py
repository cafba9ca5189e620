"""Fixtures for the REST API suite: a migrated database, the app with its lifespan running, a first admin.

The app is driven by ``httpx.ASGITransport`` with the Litestar lifespan entered in the test's own event loop,
not by ``litestar.testing.AsyncTestClient``: that client runs the lifespan and every request on a blocking
portal (a second event loop in another thread) and blocks the test loop during each request. That breaks
MariaDB (asyncmy connections are bound to the loop that opened them, so the admin bootstrap and direct SQL
here would poison the pool) and it serialises ``asyncio.gather`` of requests, which the refresh race needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar

from py_app.config import Settings
from py_app.entrypoints.rest import create_app
from py_app.infra import migrations
from tests.integration.api.api_support import JWT_SECRET, Api

OpenApi = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


@contextlib.asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """The app's lifespan, held by one task (its anyio cancel scope must be exited by the task that entered it)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # startup failed: raise its error
    try:
        yield
    finally:
        stop.set()
        await task


@pytest.fixture
def open_api(make_settings: Callable[..., Settings]) -> OpenApi:
    """``async with open_api(database_url=..., **setting_overrides) as api``: migrated, started, admin logged in."""

    @contextlib.asynccontextmanager
    async def opener(*, with_admin: bool = True, **overrides: Any) -> AsyncIterator[Api]:
        overrides.setdefault("jwt_secret", JWT_SECRET)
        if overrides.get("database_url") is None:
            overrides.pop("database_url", None)
        settings = make_settings(**overrides)
        await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)
        app = create_app(settings)
        transport = httpx.ASGITransport(app=cast(Any, app), raise_app_exceptions=False, client=("203.0.113.7", 40000))
        async with running(app), httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            api = Api(app=app, client=client, settings=settings)
            if with_admin:
                await api.bootstrap_admin()
            yield api

    return opener


@pytest.fixture
async def api(open_api: OpenApi, database_url: str) -> AsyncIterator[Api]:
    """The API on each backend (SQLite and MariaDB)."""
    async with open_api(database_url=database_url) as started:
        yield started


@pytest.fixture
async def sqlite_api(open_api: OpenApi) -> AsyncIterator[Api]:
    """The API on SQLite only: for validation and error-shape tests that do not depend on the backend."""
    async with open_api() as started:
        yield started
