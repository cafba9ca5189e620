"""The background worker runner: one process running periodic jobs until SIGTERM or SIGINT.

It has no jobs yet; the outbox relay and the pruning of spent refresh tokens will run here, so a
deployment can already run the role and scale it separately from the serving processes.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from py_app.bootstrap import build_worker
from py_app.config import Settings

logger = logging.getLogger("arcana.worker")


def run(settings: Settings) -> int:
    return asyncio.run(work_until_signalled(settings))


async def work_until_signalled(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    container = build_worker(settings)
    try:
        logger.info("worker started", extra={"jobs": []})
        await stop.wait()
        container.lifecycle.draining = True
    finally:
        await container.aclose()
    logger.info("worker stopped")
    return 0
