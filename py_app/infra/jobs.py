"""Background jobs: the outbox relay and periodic housekeeping, run by the worker role (and, in the
monolith, by the serving processes themselves unless ``ARCANA_JOBS=off``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

logger = logging.getLogger("arcana.jobs")


class Job(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then return once the work in hand is done."""


class Every:
    """Run ``work`` every ``seconds`` (first at once); a failing round is logged and retried next time."""

    def __init__(self, name: str, seconds: float, work: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self._seconds = seconds
        self._work = work

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._work()
            except Exception as exc:  # noqa: BLE001 - a job must outlive a failed round (a database blip)
                logger.warning("job round failed", extra={"job": self.name, "error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._seconds)


async def run_jobs(jobs: Sequence[Job], stop: asyncio.Event) -> None:
    if jobs:
        logger.info("jobs started", extra={"jobs": [job.name for job in jobs]})
        await asyncio.gather(*(job.run(stop) for job in jobs))


@contextlib.asynccontextmanager
async def running(jobs: Sequence[Job], grace: float) -> AsyncIterator[None]:
    """Run ``jobs`` in the background of the block; at its end let them finish what they hold, for up
    to ``grace`` seconds, then cancel them. A job cut short loses nothing: a relay's lease expires and
    its messages are claimed again, housekeeping runs again next time."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_jobs(jobs, stop), name="jobs")
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait({task}, timeout=grace)
        if not task.done():
            logger.info("jobs cut short", extra={"jobs": [job.name for job in jobs], "shutdown_grace": grace})
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        else:
            await task  # done: a job's own failure surfaces here
