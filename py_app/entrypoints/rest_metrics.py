"""REST metrics: every answer counted by method, route template and status, and timed.

It wraps the whole Litestar handler (``app.asgi_handler``) rather than being a Litestar middleware, because
Litestar runs middleware only for requests that matched a route: a 404 or 405 would go uncounted. The
route label is the template Litestar matched (``/api/v1/users/{user_id}``), never the raw path, and
``unmatched`` for everything else, so no id, email or scanner's path becomes a label value.
"""

from __future__ import annotations

import re
import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from py_app.core.ports import Metrics

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PARAM_TYPE = re.compile(r"\{(\w+):[^}]*\}")  # "{user_id:str}" -> "{user_id}"


class RequestMetrics:
    """An ASGI wrapper that records each HTTP request once, just before its last byte is sent."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = _metrics(scope)
        if str(scope["type"]) != "http" or metrics is None:
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        recorded = False

        def record() -> None:
            nonlocal recorded
            recorded = True
            method = scope.get("method", "")
            metrics.http_request(
                method if method in METHODS else "OTHER", route(scope), status, time.perf_counter() - started
            )

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and not recorded:
                record()  # before the last byte leaves: whoever sees the answer can already see it counted
            await send(message)

        try:
            await self._app(scope, receive, counted)
        finally:
            if not recorded:
                record()


def route(scope: Scope) -> str:
    """The matched route's template, its parameters' types left out; ``unmatched`` when none matched."""
    template = scope.get("path_template")
    return _PARAM_TYPE.sub(r"{\1}", template) if isinstance(template, str) and template else UNMATCHED


def _metrics(scope: Scope) -> Metrics | None:
    app: Any = scope.get("app")
    container = getattr(getattr(app, "state", None), "container", None) if app is not None else None
    return getattr(container, "metrics", None)
