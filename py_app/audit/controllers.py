"""REST controller for the audit log: parse → one service call → map the result."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from py_app.audit.models import AuditQuery
from py_app.audit.ports import AuditUseCases
from py_app.audit.schemas import AuditPageOut
from py_app.core.identity import Principal
from py_app.entrypoints.problems import problem_responses
from py_app.entrypoints.rest_support import Injected, after_principal
from py_app.users.models import MAX_PAGE

PageNumber = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="1-based page")]
PerPage = Annotated[int, QueryParameter(ge=1, le=100, description="items per page, 1 to 100")]


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ("audit",)
    security = ({"BearerAuth": []},)
    dependencies = {"audit": after_principal("audit")}  # noqa: RUF012 - Litestar's own attribute

    @get(
        "/",
        operation_id="audit.list_events",
        summary="The audit log of security events, newest first (admin)",
        responses=problem_responses(400, 401, 403),
    )
    async def list_events(
        self,
        principal: Injected[Principal],
        audit: Injected[AuditUseCases],
        page: PageNumber = 1,
        per_page: PerPage = 50,
        user_id: Annotated[str | None, QueryParameter(max_length=36, description="who acted or was acted on")] = None,
        event: Annotated[str | None, QueryParameter(max_length=64, description="e.g. authn_login_fail")] = None,
    ) -> AuditPageOut:
        query = AuditQuery(page=page, per_page=per_page, user_id=user_id, event=event)
        return AuditPageOut.of(await audit.search(principal, query))
