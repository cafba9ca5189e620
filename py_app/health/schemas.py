"""REST bodies for health checks."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec


class Liveness(msgspec.Struct, frozen=True):
    status: str

    example: ClassVar[dict[str, Any]] = {"status": "ok"}


class ReadinessBody(msgspec.Struct, frozen=True):
    status: Literal["ok", "degraded", "fail"]
    checks: dict[str, str]

    example: ClassVar[dict[str, Any]] = {"status": "ok", "checks": {"draining": "ok", "database": "ok"}}
