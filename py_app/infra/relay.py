"""The outbox relay: a background job that hands due outbox messages to their handlers.

Each relay names itself; it leases a batch (``SqlOutbox.claim``), runs the handler of each message's
topic, and marks it done, or counts a failed attempt (retried with back-off, dead after the last).
Topics without a handler here (mail, when no mail server is configured) stay pending: the relay says
once a minute how many wait, so an operator knows, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from py_app.core.ports import Clock
from py_app.infra.outbox import OutboxStore

logger = logging.getLogger("arcana.outbox")

Handler = Callable[[Mapping[str, Any]], Awaitable[None]]
LEASE = timedelta(seconds=60)
BATCH = 20
IDLE_SECONDS = 1.0
WAITING_REPORT_SECONDS = 60.0


class OutboxRelay:
    def __init__(
        self, outbox: OutboxStore, handlers: Mapping[str, Handler], clock: Clock, *, undelivered: tuple[str, ...] = ()
    ) -> None:
        self._outbox = outbox
        self._handlers = dict(handlers)
        self._topics = frozenset(self._handlers)
        self._clock = clock
        self._undelivered = undelivered  # topics that wait for configuration (reported, not claimed)
        self.name = f"relay-{uuid.uuid4().hex[:12]}"

    async def run_once(self) -> int:
        """Relay one batch; how many messages it handled."""
        claimed = await self._outbox.claim(self.name, self._clock.now(), LEASE, BATCH, self._topics)
        for message in claimed:
            try:
                await self._handlers[message.topic](message.payload)
            except Exception as exc:  # noqa: BLE001 - any failure is an attempt to retry; the class name says enough
                dead = await self._outbox.failed(message, self.name, self._clock.now(), type(exc).__name__)
                log = logger.error if dead else logger.warning
                log(
                    "outbox message dead" if dead else "outbox message will be retried",
                    extra={"topic": message.topic, "message_id": message.id, "error": type(exc).__name__},
                )
            else:
                await self._outbox.done(message.id, self.name, self._clock.now())
        return len(claimed)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set, then finish the batch in hand."""
        reported = -WAITING_REPORT_SECONDS
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                handled = await self.run_once()
                if self._undelivered and loop.time() - reported >= WAITING_REPORT_SECONDS:
                    reported = loop.time()
                    await self._report_waiting()
            except Exception as exc:  # noqa: BLE001 - a database outage must not end the job; it retries
                logger.warning("outbox relay cannot reach the database", extra={"error": type(exc).__name__})
                handled = 0
            if not handled:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), IDLE_SECONDS)

    async def _report_waiting(self) -> None:
        for topic in self._undelivered:
            waiting = await self._outbox.waiting(topic)
            if waiting:
                logger.warning(
                    "outbox messages are waiting for delivery; set ARCANA_SMTP_URL to send them",
                    extra={"topic": topic, "waiting": waiting},
                )
