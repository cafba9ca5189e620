"""The gRPC-only process runner: ``ARCANA_WORKERS`` processes, each with its own event loop and server.

grpc.aio servers must be created after a fork, so each worker process is started first and builds
its own container and server; they all bind the same port with SO_REUSEPORT and the kernel spreads
connections between them. SIGTERM or SIGINT drains every worker and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import signal
import time

from py_app.bootstrap import build_grpc, prepare_keys
from py_app.config import Settings
from py_app.entrypoints import drain, heap, rpc
from py_app.entrypoints.drain import KILL_MARGIN
from py_app.entrypoints.listeners import claimed, metrics_address, metrics_endpoint
from py_app.infra import jobs, tracing
from py_app.infra.logs import configure_logging

logger = logging.getLogger("arcana.grpc")


def run(settings: Settings) -> int:
    """Serve gRPC until SIGINT or SIGTERM; 0 after a clean drain, 1 when a worker failed or its drain was forced."""
    prepare_keys(settings)  # made or checked once, before the workers start: they must all sign alike
    logger.info("starting", extra={"grpc": f"{settings.grpc_host}:{settings.grpc_port}", "workers": settings.workers})
    addresses = [("gRPC", settings.grpc_host, settings.grpc_port), *metrics_address(settings)]
    with claimed(addresses), metrics_endpoint(settings):  # the ports are this instance's alone
        return _run(settings)


def _run(settings: Settings) -> int:
    if settings.workers == 1:
        return asyncio.run(serve_until_signalled(settings))
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no grpc state crosses a fork
    processes = [
        context.Process(target=_worker_main, args=(settings,), name=f"grpc-{n}") for n in range(settings.workers)
    ]
    for process in processes:
        process.start()
    stopping_since: float | None = None

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping_since
        stopping_since = stopping_since or time.monotonic()
        for process in processes:
            if process.pid is not None and process.exitcode is None:
                process.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    killed = []
    while any(process.is_alive() for process in processes):
        multiprocessing.connection.wait([process.sentinel for process in processes], timeout=0.2)
        if stopping_since is not None and time.monotonic() - stopping_since > settings.shutdown_grace + KILL_MARGIN:
            for process in processes:
                if process.is_alive():  # still busy long after its grace: its calls are lost
                    process.kill()
                    process.join()
                    killed.append(f"{process.name} was killed with calls still running")
    if killed:
        drain.log_forced(killed, settings.shutdown_grace)
    failed = [process.name for process in processes if process.exitcode != 0]
    if failed:
        logger.error("worker processes failed", extra={"workers": failed, "stopping": stopping_since is not None})
        return 1
    return 0


def _worker_main(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.effective_log_format)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into one SIGTERM per worker
    with tracing.configured(settings.otel_endpoint):
        code = asyncio.run(serve_until_signalled(settings))
    raise SystemExit(code)


async def serve_until_signalled(settings: Settings) -> int:
    """One process: build its container, serve gRPC, drain on SIGTERM/SIGINT, close everything.

    0 after a clean drain; 1 when calls were still running at the end of the grace (``drain forced``).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with build_grpc(settings) as container, contextlib.AsyncExitStack() as serving:
        await container.auth.prepare()
        if settings.jobs:
            await serving.enter_async_context(jobs.running(container.jobs, settings.shutdown_grace))
        server = await serving.enter_async_context(rpc.serving(container, settings.grpc_host, settings.grpc_port))
        heap.freeze_startup()
        await stop.wait()
        container.lifecycle.draining = True
    logger.info("stopped")
    return 1 if server.abandoned else 0
