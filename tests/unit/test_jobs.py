"""Background jobs stop with the process: what they hold gets the shutdown grace, then they are cut short."""

from __future__ import annotations

import asyncio
import time

import pytest

from py_app.infra import jobs


class Stubborn:
    """A job whose round in hand takes ``seconds`` whatever ``stop`` says (a database call that hangs)."""

    name = "stubborn"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.finished = False
        self.cancelled = False

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = True


class Failing:
    name = "failing"

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
        raise RuntimeError("the round failed")


@pytest.mark.req("SRS-166")
async def test_a_round_that_outlives_the_grace_is_cancelled_and_the_block_ends_on_time() -> None:
    job = Stubborn(30)
    started = time.monotonic()
    async with jobs.running([job], grace=0.2):
        await asyncio.sleep(0.05)
    assert time.monotonic() - started < 2
    assert job.cancelled
    assert not job.finished


@pytest.mark.req("SRS-166")
async def test_a_round_within_the_grace_finishes() -> None:
    job = Stubborn(0.1)
    async with jobs.running([job], grace=5):
        pass
    assert job.finished
    assert not job.cancelled


@pytest.mark.req("SRS-166")
async def test_a_job_that_failed_fails_the_block() -> None:
    with pytest.raises(RuntimeError, match="the round failed"):
        async with jobs.running([Failing()], grace=1):
            pass
