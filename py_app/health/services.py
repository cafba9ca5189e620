"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from py_app.health.models import Lifecycle, Readiness
from py_app.health.ports import Probe


class HealthService:
    """Runs every probe concurrently, each bounded by ``timeout`` seconds."""

    def __init__(self, probes: list[Probe], lifecycle: Lifecycle, timeout: float = 2.0) -> None:
        self._probes = probes
        self._lifecycle = lifecycle
        self._timeout = timeout

    async def readiness(self) -> Readiness:
        """Ready when not draining and every probe passes; the report names each failing check."""
        results = await asyncio.gather(*(self._run(probe) for probe in self._probes))
        checks = {"draining": "fail: shutting down" if self._lifecycle.draining else "ok"}
        checks.update(zip((probe.name for probe in self._probes), results, strict=True))
        return Readiness(ready=all(result == "ok" for result in checks.values()), checks=checks)

    async def _run(self, probe: Probe) -> str:
        try:
            await asyncio.wait_for(probe.check(), self._timeout)
        except TimeoutError:
            return f"fail: no answer within {self._timeout:g}s"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; the class name is enough
            return f"fail: {type(exc).__name__}"
        return "ok"
