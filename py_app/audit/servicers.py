"""gRPC servicer for the audit log: proto → one service call → proto."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from google.protobuf import struct_pb2

from py_app._proto.arcana.v1 import audit_pb2, audit_pb2_grpc
from py_app.audit.models import AuditPage, AuditQuery
from py_app.audit.ports import AuditUseCases
from py_app.entrypoints.rpc_support import principal
from py_app.users.servicers import timestamp

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, audit: AuditUseCases) -> None:
        self._audit = audit

    async def ListEvents(  # noqa: N802
        self, request: audit_pb2.ListEventsRequest, context: Context
    ) -> audit_pb2.ListEventsResponse:
        query = AuditQuery(
            page=request.page or 1,
            per_page=request.per_page or 50,
            user_id=request.user_id if request.HasField("user_id") else None,
            event=request.event if request.HasField("event") else None,
        )
        return page_message(await self._audit.search(principal(), query))


def page_message(page: AuditPage) -> audit_pb2.ListEventsResponse:
    items = []
    for event in page.items:
        details = struct_pb2.Struct()
        details.update(dict(event.details))
        items.append(
            audit_pb2.AuditEvent(
                id=event.id,
                at=timestamp(event.at),
                event=event.event,
                actor_id=event.actor_id or "",
                target_id=event.target_id or "",
                ip=event.ip,
                details=details,
            )
        )
    return audit_pb2.ListEventsResponse(
        items=items, page=page.page, per_page=page.per_page, total=page.total, total_pages=page.total_pages
    )
