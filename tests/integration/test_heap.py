"""A serving process freezes its started heap, so full collections stop walking it (SDD-268), and hands it
back to the collector when the app stops."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import pytest
from litestar.testing import AsyncTestClient

from py_app.config import Settings
from py_app.entrypoints import heap
from py_app.entrypoints.rest import create_app
from py_app.infra import migrations

pytestmark = pytest.mark.req("SDD-268")


async def test_the_started_app_is_frozen_out_of_full_collections_and_thawed_at_shutdown(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)
    gc.unfreeze()
    async with AsyncTestClient(create_app(settings)) as client:
        at_start = gc.get_freeze_count()
        await asyncio.sleep(heap.FREEZE_AFTER + 0.3)
        frozen = gc.get_freeze_count()
        answer = await client.get("/health/ready")
    assert answer.status_code == 200
    assert at_start == 0  # not during the start-up itself
    assert frozen > 10_000  # the modules, the container, the app: everything start-up made
    assert gc.get_freeze_count() == 0
