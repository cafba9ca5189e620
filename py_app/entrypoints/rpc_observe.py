"""Around every Arcana gRPC call: its request id (metadata ``x-request-id``, answered in the trailing
metadata), its trace span (metadata ``traceparent``) and its one log line (method, code, duration, client)."""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc

from py_app.auth.models import ClientInfo
from py_app.infra import caller as on_behalf
from py_app.infra import request_id, tracing
from py_app.infra.logs import LineLogger

logger = LineLogger("arcana.request")
# Codes that mean the server failed, not the caller: logged at warning, as REST logs its 5xx answers.
SERVER_FAULTS = frozenset({"INTERNAL", "UNAVAILABLE", "UNKNOWN", "DATA_LOSS", "DEADLINE_EXCEEDED"})
T = TypeVar("T")


def _code(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    if context.cancelled():  # a deadline or a cancel: the caller left before the answer
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return "OK" if code in (None, 0) else str(code)


def with_request_id(metadata: tuple[tuple[str, str | bytes], ...] = ()) -> tuple[tuple[str, str | bytes], ...]:
    """``metadata`` and the request id: the trailing metadata of an answer, a response or an abort.

    Trailing, not initial: it travels in the status's own batch, where initial metadata would be one more
    operation per call (measured on the trivial grpc.aio handler: 10% of its throughput, nothing for trailing).
    """
    rid = request_id.current()
    return metadata if rid is None else (*metadata, (request_id.HEADER, rid))


class Offered:
    """What the caller's metadata says about the call itself, read in one pass over it."""

    __slots__ = ("forwarded_for", "request_id", "traceparent", "user_agent")

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.request_id: str | None = None
        self.traceparent: str | None = None
        self.user_agent = ""
        self.forwarded_for: str | None = None
        for key, value in context.invocation_metadata() or ():
            if not isinstance(value, str):
                continue
            if key == request_id.HEADER:
                self.request_id = self.request_id or value  # the first one, as metadata_value reads it
            elif key == "user-agent":
                self.user_agent = value
            elif key == "traceparent":
                self.traceparent = self.traceparent or value
            elif key == "x-forwarded-for":
                self.forwarded_for = value


async def observed(
    span_name: str,
    method: str,
    context: grpc.aio.ServicerContext[Any, Any],
    caller: ClientInfo,
    offered: Offered,
    work: Coroutine[Any, Any, T],
) -> T:
    """``work`` (the call's answer) under the call's request id and span, then its one log line.

    A plain coroutine rather than a context manager: on a path taken by every call, an async generator's
    enter and exit cost more than the line they bracket."""
    token = request_id.bind(request_id.accept(offered.request_id))
    for_whom = on_behalf.enter()  # filled in once the guard authenticates (rpc_support)
    started = time.perf_counter()
    try:
        try:
            span_context = tracing.server_span(span_name, lambda: offered.traceparent)
        except BaseException:
            work.close()  # never started: closed, not left for the garbage collector to warn about
            raise
        with span_context as span:
            undelivered = False
            try:
                result = await work
                context.set_trailing_metadata(with_request_id())
                return result
            except grpc.aio.AbortError:
                raise  # an answer: its code is the context's
            except BaseException:
                undelivered = True  # errors become aborts inside; this is an answer the caller was not there for
                raise
            finally:
                code = "CANCELLED" if undelivered else _code(context)
                tracing.finish_grpc(span, code)
                if (who := on_behalf.current()) is not None:
                    tracing.name_user(span, who.user_id)
                logger.log(
                    logging.WARNING if code in SERVER_FAULTS else logging.INFO,
                    "request",
                    {
                        "method": method,
                        "code": code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "client_ip": caller.ip,
                    },
                )
    finally:
        on_behalf.leave(for_whom)
        request_id.unbind(token)
