"""A serving process freezes its started heap, so full collections stop walking it (SDD-268), a second after
a REST worker's start-up rather than inside it, and hands it back to the collector when the app stops."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest

from py_app.config import Settings
from py_app.entrypoints import heap
from py_app.entrypoints.rest import create_app
from py_app.infra import migrations
from tests.integration.api.conftest import running

pytestmark = pytest.mark.req("SDD-268")


async def test_the_started_app_is_frozen_out_of_full_collections_and_thawed_at_shutdown(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)
    loop = asyncio.get_running_loop()
    seen: list[tuple[str, int, float]] = []  # what ran, the freeze count right after it, when
    freeze, thaw = heap.freeze_startup, heap.thaw

    def freezing() -> None:
        began = loop.time()  # when it was called: the collection it runs takes long on a loaded machine
        freeze()
        seen.append(("freeze", gc.get_freeze_count(), began))

    def thawing() -> None:
        thaw()
        seen.append(("thaw", gc.get_freeze_count(), loop.time()))

    monkeypatch.setattr(heap, "freeze_startup", freezing)
    monkeypatch.setattr(heap, "thaw", thawing)
    gc.unfreeze()
    app = create_app(settings)
    transport = httpx.ASGITransport(app=cast(Any, app))  # the lifespan on this test's loop, as a worker runs it
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        started = loop.time()
        during_start_up = list(seen)
        await asyncio.sleep(heap.FREEZE_AFTER + 0.5)
        answer = await client.get("/health/ready")
    assert answer.status_code == 200
    assert during_start_up == []
    assert [what for what, _, _ in seen] == ["freeze", "thaw"]
    (_, frozen, frozen_at), (_, thawed, _) = seen
    assert frozen > 10_000  # the modules, the container, the app: everything start-up made
    assert frozen_at - started < heap.FREEZE_AFTER + 0.4
    assert thawed == 0
