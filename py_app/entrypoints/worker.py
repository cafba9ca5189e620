"""The background worker runner: one process running the jobs (the outbox relay, housekeeping) until
SIGTERM or SIGINT, then letting them finish what they hold. Several workers may run at once: the
relay's leases keep them from handling a message twice."""

from __future__ import annotations

import asyncio
import logging
import signal

from py_app.bootstrap import build_worker
from py_app.config import Settings
from py_app.entrypoints.listeners import claimed, metrics_address, metrics_endpoint
from py_app.infra.jobs import run_jobs

logger = logging.getLogger("arcana.worker")


def run(settings: Settings) -> int:
    with claimed(metrics_address(settings)), metrics_endpoint(settings):
        return asyncio.run(work_until_signalled(settings))


async def work_until_signalled(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    container = build_worker(settings)
    try:
        logger.info("worker started", extra={"jobs": [job.name for job in container.jobs]})
        await run_jobs(container.jobs, stop)
        container.lifecycle.draining = True
    finally:
        await container.aclose()
    logger.info("worker stopped")
    return 0
