"""Reading the audit log (administrators only) and pruning it after the retention."""

from __future__ import annotations

from datetime import timedelta

from py_app.audit.models import AuditPage, AuditQuery
from py_app.audit.ports import AuditStore
from py_app.core.errors import FieldError, PermissionDenied
from py_app.core.identity import Principal
from py_app.core.ports import Clock
from py_app.users.models import MAX_PAGE, check_length, raise_if

MAX_PER_PAGE = 100


class AuditService:
    def __init__(self, store: AuditStore, clock: Clock, retention_days: int) -> None:
        self._store = store
        self._clock = clock
        self._retention = timedelta(days=retention_days)

    async def search(self, actor: Principal, query: AuditQuery) -> AuditPage:
        if not actor.is_admin:
            raise PermissionDenied("Administrators only.")
        raise_if(
            None if 1 <= query.page <= MAX_PAGE else FieldError("page", f"must be 1 to {MAX_PAGE:,}"),
            None if 1 <= query.per_page <= MAX_PER_PAGE else FieldError("per_page", f"must be 1 to {MAX_PER_PAGE}"),
            check_length("user_id", query.user_id or "", 36),
            check_length("event", query.event or "", 64),
        )
        items, total = await self._store.search(query)
        return AuditPage(items, query.page, query.per_page, total)

    async def prune(self) -> int:
        """The retention job: records older than the retention go."""
        return await self._store.prune(self._clock.now() - self._retention)
