"""Health endpoints for load balancers and orchestrators: thin, one service call each."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.openapi import ResponseSpec

from py_app.entrypoints.rest_support import Injected
from py_app.health.schemas import Liveness, ReadinessBody
from py_app.health.services import HealthService


class HealthController(Controller):
    path = "/health"
    tags = ("health",)

    @get("/live", operation_id="health.live", summary="Liveness: the process answers", sync_to_thread=False)
    def live(self) -> Liveness:
        return Liveness(status="ok")

    @get(
        "/ready",
        operation_id="health.ready",
        summary="Readiness: database, schema, Redis when configured, not draining",
        description="200 with status `ok`, or `degraded` when only a dependency nothing needs yet (Redis) fails.",
        responses={503: ResponseSpec(data_container=ReadinessBody, description="Not ready; names the failing check")},
    )
    async def ready(self, health: Injected[HealthService]) -> Response[ReadinessBody]:
        readiness = await health.readiness()
        body = ReadinessBody(status=readiness.status, checks=readiness.checks)
        return Response(body, status_code=200 if readiness.ready else 503, headers={"Cache-Control": "no-store"})
