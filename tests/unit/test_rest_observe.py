"""The headers the REST request observer adds to every answer (SRS-152, SRS-136), as the ASGI app sends them."""

from __future__ import annotations

import pytest

from py_app.entrypoints.rest_observe import RequestObserver
from py_app.infra.request_id import HEADER

Headers = list[tuple[bytes, bytes]]


async def answer_headers(path: str, own: Headers) -> Headers:
    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(own)})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"x-request-id", b"req-1")], "client": None}
    await RequestObserver(app, ())(scope, receive, send)  # type: ignore[arg-type]
    headers: Headers = sent[0]["headers"]  # type: ignore[assignment]
    return headers


@pytest.mark.req("SRS-152", "SRS-136", "SDD-125")
async def test_an_api_answer_gets_nosniff_no_store_and_the_request_id_once_each() -> None:
    headers = await answer_headers(
        "/api/v1/users/u1", [(b"content-type", b"application/json"), (b"X-Content-Type-Options", b"x")]
    )
    assert headers == [
        (b"content-type", b"application/json"),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
        (HEADER.encode(), b"req-1"),
    ]


@pytest.mark.req("SRS-152", "SDD-125")
async def test_a_handler_s_own_cache_control_is_kept_and_outside_api_none_is_added() -> None:
    own = [(b"Cache-Control", b"max-age=300")]
    assert (b"Cache-Control", b"max-age=300") in await answer_headers("/api/v1/keys", own)
    assert [name for name, _ in await answer_headers("/api/v1/keys", own)].count(b"cache-control") == 0
    assert (b"cache-control", b"no-store") not in await answer_headers("/docs", [])
    assert (b"x-content-type-options", b"nosniff") in await answer_headers("/docs", [])
