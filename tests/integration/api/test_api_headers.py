"""Headers every REST answer carries (SRS-152): nosniff everywhere, no-store on everything under /api/.

The routes come from the app's router, so a route added later is covered without editing this file.
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.api.api_support import PUBLIC, V1, Api, Route, app_routes, expect
from tests.integration.api.conftest import OpenApi

SAFE = {"GET", "HEAD", "OPTIONS"}


async def answers(api: Api) -> list[httpx.Response]:
    """One answer per route and method, plus the framework's own answers (404, 405, 413, 415, 400)."""
    assert api.admin is not None
    responses = []
    for route in app_routes(api.app):
        path = route.path(user_id=api.admin.id, session_id=api.admin.id, name="x")
        responses.append(await send(api, route, path))
    responses += [
        await api.client.get("/no/such/route"),
        await api.client.get(f"{V1}/no-such-route", headers=api.admin_headers),
        await api.client.put(f"{V1}/auth/me", headers=api.admin_headers),
        await api.client.post(f"{V1}/auth/login", content=b"x" * 70_000, headers={"Content-Type": "application/json"}),
        await api.client.post(f"{V1}/auth/login", content=b"{}", headers={"Content-Type": "text/plain"}),
        await api.client.post(f"{V1}/auth/login", content=b"{", headers={"Content-Type": "application/json"}),
        await api.client.get(f"{V1}/auth/me", headers={"Authorization": "Bearer nope"}),
    ]
    return responses


async def send(api: Api, route: Route, path: str) -> httpx.Response:
    if route.method in SAFE:
        return await api.client.request(route.method, path, headers=api.admin_headers)
    if route.takes_body:  # refused before it changes anything
        return await api.client.request(route.method, path, json={"no_such_field": 1}, headers=api.admin_headers)
    return await api.client.request(route.method, path)  # anonymous: a 401, so logout and delete do nothing


@pytest.mark.req("SRS-152")
async def test_every_answer_says_nosniff(open_api: OpenApi) -> None:
    async with open_api(public_directory=True) as api:
        for response in await answers(api):
            where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
            assert response.headers.get("x-content-type-options") == "nosniff", where


@pytest.mark.req("SRS-152")
async def test_every_api_answer_is_no_store(open_api: OpenApi) -> None:
    async with open_api(public_directory=True) as api:
        api_answers = [response for response in await answers(api) if response.request.url.path.startswith("/api/")]
        assert len(api_answers) > 20
        for response in api_answers:
            where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
            assert "no-store" in response.headers.get("cache-control", ""), where


@pytest.mark.req("SRS-152")
async def test_personal_data_is_never_cacheable(sqlite_api: Api) -> None:
    api = sqlite_api
    assert api.admin is not None
    user = await api.register("private")
    for path, headers in (
        (f"{V1}/auth/me", user.headers),
        (f"{V1}/auth/sessions", user.headers),
        (f"{V1}/users/{user.id}", user.headers),
        (f"{V1}/users", api.admin_headers),
    ):
        response = await api.client.get(path, headers=headers)
        expect(response, 200)
        assert response.headers.get("cache-control") == "no-store", path
        assert response.headers.get("x-content-type-options") == "nosniff", path
    response = await api.client.patch(f"{V1}/users/{user.id}", json={"first_name": "P"}, headers=user.headers)
    expect(response, 200)
    assert response.headers.get("cache-control") == "no-store"
    assert f"{PUBLIC}/users" not in {route.template for route in app_routes(api.app)}  # off by default


@pytest.mark.req("SRS-141")
async def test_options_allow_names_every_method_of_the_path(sqlite_api: Api) -> None:
    """Litestar answered ``OPTIONS /api/v1/users`` with ``Allow: OPTIONS, POST``: GET was missing."""
    methods: dict[str, set[str]] = {}
    for route in app_routes(sqlite_api.app):
        methods.setdefault(route.template, set()).add(route.method)
    assert methods[f"{V1}/users"] == {"GET", "POST", "OPTIONS"}  # the paths that broke
    assert methods[f"{V1}/users/{{user_id}}"] == {"GET", "PATCH", "DELETE", "OPTIONS"}
    for template, expected in methods.items():
        path = Route("OPTIONS", template, False).path(name="x")
        response = await sqlite_api.client.options(path)
        assert response.status_code == 204, path
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        assert allowed == expected, path
