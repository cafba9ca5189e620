"""REST bodies for health checks."""

from __future__ import annotations

import msgspec


class Liveness(msgspec.Struct, frozen=True):
    status: str


class ReadinessBody(msgspec.Struct, frozen=True):
    status: str
    checks: dict[str, str]
