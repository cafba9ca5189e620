"""gRPC plumbing shared by the servicers: one interceptor authenticates and maps domain errors, once.

Authentication: metadata ``authorization: Bearer <access token>``, checked with the same service and
revocation rules as REST for every method not listed as public. The caller is handed to the servicer
through a context variable. Errors: every DomainError becomes its status (``infra.rpc_errors``, derived
from the registry in ``core.errors``). Anything else is a bug: logged, and answered INTERNAL without detail.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from py_app.auth.models import ClientInfo
from py_app.core.errors import DomainError, Unauthenticated
from py_app.core.identity import Principal
from py_app.infra.rpc_errors import to_status

logger = logging.getLogger("arcana.rpc")

PUBLIC_METHODS = frozenset(
    {
        "/arcana.v1.AuthService/Register",
        "/arcana.v1.AuthService/Login",
        "/arcana.v1.AuthService/Refresh",
        "/arcana.v1.AuthService/ValidateToken",
        "/arcana.v1.InfoService/GetInfo",
    }
)

CANCEL_SECONDS = 2.0  # for cancelled work to unwind (a database call closes its connection)

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("arcana_principal")


def principal() -> Principal:
    """The authenticated caller of the current RPC (set by the interceptor)."""
    return _principal.get()


def client_info(context: grpc.aio.ServicerContext[Any, Any]) -> ClientInfo:
    metadata = dict(context.invocation_metadata() or ())
    peer = context.peer() or ""  # "ipv4:127.0.0.1:53422" / "ipv6:[::1]:53422"
    host = peer.split(":", 1)[1].rsplit(":", 1)[0].strip("[]") if ":" in peer else ""
    return ClientInfo(user_agent=str(metadata.get("user-agent", "")), ip=host)


Authenticator = Callable[[str], Awaitable[Principal]]


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no types
    """Authentication then error mapping, around every unary-unary method of the Arcana services."""

    def __init__(self, authenticate: Authenticator) -> None:
        self._authenticate = authenticate
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def drain(self, grace: float) -> int:
        """Wait (up to ``grace`` seconds) for the work of calls still running, even where the caller left.

        Return how many were still running then: those are cancelled (their database work rolled back),
        so nothing runs on after the pools close, and the drain counts as forced.
        """
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=grace)
        abandoned = {task for task in self._in_flight if not task.done()}
        for task in abandoned:
            task.cancel()
        if abandoned:
            await asyncio.wait(abandoned, timeout=CANCEL_SECONDS)
        return len(abandoned)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None or not method.startswith("/arcana."):
            return handler
        behaviour = handler.unary_unary
        needs_auth = method not in PUBLIC_METHODS

        async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                if needs_auth:
                    _principal.set(await self._authenticate(_bearer(context)))
                return await behaviour(request, context)
            except DomainError as error:
                await context.abort_with_status(to_status(error))
            except grpc.aio.AbortError:
                raise
            except Exception:
                logger.exception("unhandled error", extra={"method": method})
                await context.abort(grpc.StatusCode.INTERNAL, "The server could not complete the request.")

        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            # A deadline or a client cancel cancels this coroutine. The work itself is shielded: a
            # database call torn mid-query leaves SQLAlchemy tearing down a connection behind our back
            # (seen hanging at shutdown), and these calls finish in milliseconds anyway.
            task = asyncio.ensure_future(handle(request, context))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            return await asyncio.shield(task)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _bearer(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    raise Unauthenticated("A Bearer access token is required in the authorization metadata.")
