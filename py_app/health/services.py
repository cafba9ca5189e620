"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from py_app.health.models import Lifecycle, Readiness
from py_app.health.ports import CheckFailed, Probe

OK = "ok"


class HealthService:
    """Runs every probe concurrently, each bounded by ``timeout`` seconds."""

    def __init__(self, probes: list[Probe], lifecycle: Lifecycle, timeout: float = 2.0) -> None:
        self._probes = probes
        self._lifecycle = lifecycle
        self._timeout = timeout

    async def readiness(self) -> Readiness:
        """Ready when not draining and every critical probe passes; degraded when only others fail.

        The report names each check and, for a failing one, why.
        """
        results = await asyncio.gather(*(self._run(probe) for probe in self._probes))
        outcomes = list(zip(self._probes, results, strict=True))
        checks = {"draining": "fail: shutting down" if self._lifecycle.draining else OK}
        checks.update((probe.name, result) for probe, result in outcomes)
        if self._lifecycle.draining or any(probe.critical and result != OK for probe, result in outcomes):
            return Readiness("fail", checks)
        return Readiness("ok" if all(result == OK for result in results) else "degraded", checks)

    async def _run(self, probe: Probe) -> str:
        try:
            await asyncio.wait_for(probe.check(), self._timeout)
        except TimeoutError:
            return f"fail: no answer within {self._timeout:g}s"
        except CheckFailed as failed:
            return f"fail: {failed}"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; the class name is enough
            return f"fail: {type(exc).__name__}"
        return OK
