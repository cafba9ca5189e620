"""gRPC plumbing shared by the servicers: one guard around every method authenticates and maps errors, once.

Authentication: metadata ``authorization: Bearer <access token>``, checked with the same service and
revocation rules as REST for every method not listed as public. The caller is handed to the servicer
through a context variable. Errors: every DomainError becomes its status (``infra.rpc_errors``, derived
from the registry in ``core.errors``). Anything else is a bug: logged, and answered INTERNAL without detail.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

from py_app.auth.models import ClientInfo
from py_app.core.errors import DomainError, InvalidInput, Unauthenticated
from py_app.core.identity import Principal
from py_app.core.ports import Metrics, NoMetrics
from py_app.entrypoints.addresses import Network, client_address
from py_app.entrypoints.rpc_observe import Offered, observed, with_request_id
from py_app.infra import caller as on_behalf
from py_app.infra import remote, request_reads
from py_app.infra.rpc_errors import to_status

logger = logging.getLogger("arcana.rpc")

PUBLIC_METHODS = frozenset(
    {
        "/arcana.v1.AuthService/Register",
        "/arcana.v1.AuthService/Login",
        "/arcana.v1.AuthService/Refresh",
        "/arcana.v1.AuthService/ValidateToken",
        "/arcana.v1.AuthService/ForgotPassword",
        "/arcana.v1.AuthService/ResetPassword",
        "/arcana.v1.AuthService/ResendVerification",
        "/arcana.v1.AuthService/VerifyEmail",
        "/arcana.v1.InfoService/GetInfo",
    }
)

# What an account whose email is not yet verified may call where verified emails are required.
UNVERIFIED_OK = frozenset({"/arcana.v1.AuthService/Me", "/arcana.v1.AuthService/Logout"})
CANCEL_SECONDS = 2.0  # for cancelled work to unwind (a database call closes its connection)

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("arcana_principal")
_client: contextvars.ContextVar[ClientInfo] = contextvars.ContextVar("arcana_client")


def principal() -> Principal:
    """The authenticated caller of the current RPC (set by the guard)."""
    return _principal.get()


def client() -> ClientInfo:
    """Who is calling from where, for the current RPC (set by the guard)."""
    return _client.get()


def client_info(
    context: grpc.aio.ServicerContext[Any, Any], trusted: Sequence[Network] = (), offered: Offered | None = None
) -> ClientInfo:
    offered = offered or Offered(context)
    peer = context.peer() or ""  # "ipv4:127.0.0.1:53422" / "ipv6:[::1]:53422"
    host = peer.split(":", 1)[1].rsplit(":", 1)[0].strip("[]") if ":" in peer else ""
    address = client_address(host, offered.forwarded_for, trusted)
    return ClientInfo(user_agent=offered.user_agent, ip=address, transport="grpc")


Authenticator = Callable[..., Awaitable[Principal]]  # AuthUseCases.authenticate


MALFORMED = InvalidInput("The request message could not be parsed.")
_UNPARSED = object()  # what a guarded deserializer hands on for bytes that are not the request message


class ServiceGuard:
    """Around every method of every service: bytes that do not parse as the request message get
    INVALID_ARGUMENT (never UNKNOWN with a Python class name and a logged traceback). Around every
    unary method of the Arcana services, also: authentication, then error mapping.

    Applied once per method when the servicers are registered (``GuardedRegistration``), not as a
    grpc.aio interceptor: an interceptor runs per call, as two more coroutines and a new handler each
    time, before the method is even looked up."""

    def __init__(
        self, authenticate: Authenticator, trusted: Sequence[Network] = (), metrics: Metrics | None = None
    ) -> None:
        self._authenticate = authenticate
        self._trusted = tuple(trusted)
        self._metrics = metrics or NoMetrics()
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

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` of the full method name ``method`` ("/package.Service/Method"), guarded."""
        if handler.unary_unary is not None and method.startswith("/arcana."):
            return self._arcana_unary(handler, method)
        return _parsed_or_rejected(handler)

    def _arcana_unary(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        behaviour = handler.unary_unary
        needs_auth = method not in PUBLIC_METHODS
        unverified_ok = method in UNVERIFIED_OK
        service, name = method[1:].rsplit("/", 1)
        span_name = method.lstrip("/")

        def answered(code: str, started: float) -> None:
            # Recorded before the status leaves: whoever sees the answer can already see it counted.
            self._metrics.rpc_call(service, name, code, time.perf_counter() - started)

        async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            offered = Offered(context)
            caller = client_info(context, self._trusted, offered)
            remote.inherit_deadline(context.time_remaining())  # a layered edge's calls to its tiers end with it
            reads = request_reads.enter()  # this call's own task (the guard runs each call in one)
            try:
                return await observed(span_name, method, context, caller, offered, answer(request, context, caller))
            finally:
                request_reads.leave(reads)

        async def answer(request: Any, context: grpc.aio.ServicerContext[Any, Any], caller: ClientInfo) -> Any:
            started = time.perf_counter()
            try:
                if request is _UNPARSED:
                    raise MALFORMED
                _client.set(caller)
                if needs_auth:
                    verified = await self._authenticate(_bearer(context), caller, unverified_ok=unverified_ok)
                    _principal.set(verified)
                    on_behalf.identify(verified.user_id, verified.session_id)  # for logs and internal calls
                response = await behaviour(request, context)
            except DomainError as error:
                status = to_status(error)
                answered(status.code.name, started)
                await context.abort(status.code, status.details, with_request_id(status.trailing_metadata))
            except grpc.aio.AbortError:
                code = context.code()
                answered(code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN", started)
                raise
            except Exception:
                logger.exception("unhandled error", extra={"method": method})
                answered(grpc.StatusCode.INTERNAL.name, started)
                await context.abort(
                    grpc.StatusCode.INTERNAL, "The server could not complete the request.", with_request_id()
                )
            else:
                answered(grpc.StatusCode.OK.name, started)
                return response

        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            # A deadline or a client cancel cancels this coroutine. The work itself is shielded: a
            # database call torn mid-query leaves SQLAlchemy tearing down a connection behind our back
            # (seen hanging at shutdown), and these calls finish in milliseconds anyway.
            task = asyncio.ensure_future(handle(request, context))
            self._in_flight.add(task)
            task.add_done_callback(settled)
            return await asyncio.shield(task)

        def settled(task: asyncio.Task[Any]) -> None:  # one callback per call, not two
            self._in_flight.discard(task)
            _settled(task)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


class GuardedRegistration:
    """What the generated ``add_*Servicer_to_server`` functions (and health, reflection) register with:
    the server's two registration calls, each method handler wrapped by the guard on its way in."""

    def __init__(self, server: grpc.aio.Server, guard: ServiceGuard) -> None:
        self._server = server
        self._guard = guard

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_GuardedGeneric(handler, self._guard) for handler in handlers))

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        guarded = {name: self._guard.wrap(f"/{service}/{name}", handler) for name, handler in handlers.items()}
        self._server.add_registered_method_handlers(service, guarded)


class _GuardedGeneric(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc ships no types
    """A generic handler whose answers are guarded, each method wrapped once and then remembered (only
    methods it serves are remembered: unknown names come from callers)."""

    def __init__(self, inner: grpc.GenericRpcHandler, guard: ServiceGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._guarded: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        guarded = self._guarded.get(method)
        if guarded is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None
            guarded = self._guarded[method] = self._guard.wrap(method, handler)
        return guarded


def _settled(task: asyncio.Task[Any]) -> None:
    """Collect what shielded work ended with. After its caller has gone (a deadline, a cancel), the
    answer cannot be sent any more, which is expected: it is noted at debug, never left to asyncio's
    "Task exception was never retrieved" at error level."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, grpc.aio.AbortError):
        logger.debug("call finished after its caller left", extra={"error": type(error).__name__})


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # noqa: BLE001 - whatever the parser raises, the bytes were not the message
            return _UNPARSED

    return parse


def _parsed_or_rejected(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """Any other method (health, reflection, streams): the same handler, refusing unparsable messages."""

    async def reject(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort_with_status(to_status(MALFORMED))

    async def checked(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        async for request in requests:
            if request is _UNPARSED:
                await reject(context)
            yield request

    make: Callable[..., grpc.RpcMethodHandler]
    behaviour: Callable[..., Any]
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if request is _UNPARSED:
                await reject(context)
            return await inner_uu(request, context)

        make, behaviour = grpc.unary_unary_rpc_method_handler, unary_unary
    elif handler.unary_stream is not None:
        inner_us = handler.unary_stream
        make = grpc.unary_stream_rpc_method_handler
        if inspect.isasyncgenfunction(inner_us):

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                if request is _UNPARSED:
                    await reject(context)
                async for response in inner_us(request, context):
                    yield response

            behaviour = unary_stream
        else:  # a servicer that writes through the context (grpc's own health Watch)

            async def unary_writes(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                if request is _UNPARSED:
                    await reject(context)
                return await inner_us(request, context)

            behaviour = unary_writes
    elif handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await inner_su(checked(requests, context), context)

        make, behaviour = grpc.stream_unary_rpc_method_handler, stream_unary
    else:
        inner_ss = handler.stream_stream
        make = grpc.stream_stream_rpc_method_handler
        if inspect.isasyncgenfunction(inner_ss):

            async def stream_stream(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                async for response in inner_ss(checked(requests, context), context):
                    yield response

            behaviour = stream_stream
        else:

            async def stream_writes(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await inner_ss(checked(requests, context), context)

            behaviour = stream_writes
    return make(
        behaviour,
        request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


def _bearer(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    raise Unauthenticated("A Bearer access token is required in the authorization metadata.")
