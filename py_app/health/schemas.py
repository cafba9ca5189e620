"""REST bodies for health checks."""

from __future__ import annotations

from typing import Literal

import msgspec


class Liveness(msgspec.Struct, frozen=True):
    status: str


class ReadinessBody(msgspec.Struct, frozen=True):
    status: Literal["ok", "degraded", "fail"]
    checks: dict[str, str]
