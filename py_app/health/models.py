"""Health results."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether the process should receive traffic, with each check's outcome (``ok`` or why not)."""

    ready: bool
    checks: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Lifecycle:
    """Process state shared by transports: draining starts at shutdown, before in-flight work ends."""

    draining: bool = False
