"""What readiness is made of: probes that raise when their dependency is not usable."""

from __future__ import annotations

from typing import Protocol


class CheckFailed(Exception):
    """A probe's finding, in words safe to show on the readiness endpoint (what is wrong, and the fix)."""


class Probe(Protocol):
    """One readiness check, named in the report (``database``, ``schema``, ``redis``, ...).

    A critical probe that fails makes the process not ready; a non-critical one (a dependency nothing
    needs yet) only makes it degraded.
    """

    name: str
    critical: bool

    async def check(self) -> None:
        """Return when the dependency works; raise (``CheckFailed`` with a reason, or any error) otherwise."""
