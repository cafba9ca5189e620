"""Around every REST request, routing failures and problems included: its request id, the headers every
answer carries, its trace span and its one log line (method, route template, status, duration, client address)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from py_app.entrypoints.addresses import Network, client_address
from py_app.entrypoints.rest_support import scope_header
from py_app.infra import caller, request_id, request_reads, tracing
from py_app.infra.logs import LineLogger

logger = LineLogger("arcana.request")
SERVER_ERROR = 500  # from here up, the server failed: logged at warning
UNMATCHED = "<unmatched>"  # no route: the raw path is the caller's text and stays out of the logs


NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
ALLOW = b"allow"


def route_methods(app: Litestar) -> dict[str, bytes]:
    """Every path template's methods, for the ``Allow`` of its OPTIONS answer.

    Litestar 2.25 builds the automatic OPTIONS handler from the first controller method it meets for a
    path and does not update it when more methods join that path, so ``OPTIONS /api/v1/users`` answered
    ``Allow: OPTIONS, POST`` (no GET). The routes know all their methods; the observer takes them from here.
    """
    return {
        route.path: ", ".join(sorted(route.methods)).encode() for route in app.routes if isinstance(route, HTTPRoute)
    }


def _allowed(scope: Scope, methods: Mapping[str, bytes]) -> bytes | None:
    handler = scope.get("route_handler")
    paths = getattr(handler, "paths", ()) if handler is not None else ()
    return next((methods[path] for path in paths if path in methods), None)


def _answer_headers(
    headers: Iterable[Any], api: bool, request_header: tuple[bytes, bytes], allow: bytes | None = None
) -> list[Any]:
    """The answer's headers plus those every REST answer carries (SRS-152, SRS-136): ``nosniff`` keeps browsers
    from running a JSON or text answer as script or HTML; every answer under ``/api/`` holds personal data,
    tokens, or a problem about them, so no cache may keep it unless the handler chose its own
    ``Cache-Control``; and the request id. ``allow`` (OPTIONS answers only) replaces an ``Allow`` header.
    Here rather than in Litestar ``before_send`` hooks, which wrapped every send once more and parsed the
    headers into an object per answer."""
    out = []
    cache_chosen = False
    for entry in headers:
        name = entry[0].lower()
        if name == NOSNIFF[0]:
            continue  # replaced: the one value every answer carries
        if allow is not None and name == ALLOW:
            out.append((ALLOW, allow))
            continue
        cache_chosen = cache_chosen or name == NO_STORE[0]
        out.append(entry)
    out.append(NOSNIFF)
    if api and not cache_chosen:
        out.append(NO_STORE)
    out.append(request_header)
    return out


class RequestObserver:
    """ASGI wrapper for the application's handler (outside routing, so a 404 passes through it too)."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network], methods: Mapping[str, bytes] | None = None) -> None:
        self._app = app
        self._trusted = tuple(trusted)
        self._methods = dict(methods or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        await self._observed(scope, receive, send)

    async def _observed(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        rid = request_id.accept(scope_header(scope, b"x-request-id"))
        header = (b"x-request-id", rid.encode())
        api = scope["path"].startswith("/api/")
        status = SERVER_ERROR  # what the caller sees when the handler dies before answering
        token = request_id.bind(rid)
        for_whom = caller.enter()  # filled in by the dependency that authenticates (provide_principal)
        reads = request_reads.enter()
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                allow = _allowed(scope, self._methods) if scope["method"] == "OPTIONS" else None
                message["headers"] = _answer_headers(message.get("headers", ()), api, header, allow)
            await send(message)

        span = tracing.server_span(scope["method"], lambda: scope_header(scope, b"traceparent"))
        try:
            with span as active:
                await self._app(scope, receive, send_with_id)
                tracing.name_rest(active, scope["method"], scope.get("path_template"), status)
                if (who := caller.current()) is not None:
                    tracing.name_user(active, who.user_id)
        finally:
            self._log(scope, status, (time.perf_counter() - started) * 1000)
            request_reads.leave(reads)
            caller.leave(for_whom)
            request_id.unbind(token)

    def _log(self, scope: HTTPScope, status: int, duration_ms: float) -> None:
        client: Any = scope.get("client")
        peer = client[0] if client else ""
        logger.log(
            logging.WARNING if status >= SERVER_ERROR else logging.INFO,
            "request",
            {
                "method": scope["method"],
                "route": scope.get("path_template") or UNMATCHED,
                "status": status,
                "duration_ms": round(duration_ms, 2),
                "client_ip": client_address(peer, scope_header(scope, b"x-forwarded-for"), self._trusted),
            },
        )
