"""What readiness is made of: probes that raise when their dependency is not usable."""

from __future__ import annotations

from typing import Protocol


class Probe(Protocol):
    """One readiness check, named in the report (``database``, ``redis``, ...)."""

    name: str

    async def check(self) -> None:
        """Return when the dependency works; raise otherwise."""
