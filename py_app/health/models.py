"""Health results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "degraded", "fail"]


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether the process should receive traffic, with each check's outcome (``ok`` or why not).

    ``degraded``: only checks nothing critical depends on fail; the process still takes traffic.
    """

    status: Status
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.status != "fail"


@dataclass(slots=True)
class Lifecycle:
    """Process state shared by transports: draining starts at shutdown, before in-flight work ends."""

    draining: bool = False
