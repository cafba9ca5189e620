"""Around every Arcana gRPC call: its request id (metadata ``x-request-id``, answered in the initial
metadata), its trace span (metadata ``traceparent``) and its one log line (method, code, duration, client)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from py_app.auth.models import ClientInfo
from py_app.infra import request_id, tracing
from py_app.infra.logs import LineLogger

logger = LineLogger("arcana.request")
# Codes that mean the server failed, not the caller: logged at warning, as REST logs its 5xx answers.
SERVER_FAULTS = frozenset({"INTERNAL", "UNAVAILABLE", "UNKNOWN", "DATA_LOSS", "DEADLINE_EXCEEDED"})


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name and isinstance(value, str):
            return value
    return None


def _code(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    if context.cancelled():  # a deadline or a cancel: the caller left before the answer
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return "OK" if code in (None, 0) else str(code)


async def announce(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """The request id in the initial metadata, sent right before the answer: a response or an abort. Not
    earlier: the call's work starts at once, and a call whose caller has gone fails here as its answer would."""
    rid = request_id.current()
    if rid is not None:
        await context.send_initial_metadata(((request_id.HEADER, rid),))


@contextlib.asynccontextmanager
async def observed(method: str, context: grpc.aio.ServicerContext[Any, Any], caller: ClientInfo) -> AsyncIterator[None]:
    rid = request_id.accept(metadata_value(context, request_id.HEADER))
    token = request_id.bind(rid)
    started = time.perf_counter()
    try:
        with tracing.server_span(method.lstrip("/"), lambda: metadata_value(context, "traceparent")) as span:
            undelivered = False
            try:
                yield
                await announce(context)
            except grpc.aio.AbortError:
                raise  # an answer: its code is the context's
            except BaseException:
                undelivered = True  # errors become aborts inside; this is an answer the caller was not there for
                raise
            finally:
                code = "CANCELLED" if undelivered else _code(context)
                tracing.finish_grpc(span, code)
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
        request_id.unbind(token)
