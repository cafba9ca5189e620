"""Bad REST bodies on every JSON route (SRS-150, SRS-155): 400 or 415 problems, never a 500 or a traceback.

The routes come from the app's router, so a route added later is covered without editing this file. Every
case is sent anonymously and with the admin's token: bodies are checked before anything else runs.
"""

from __future__ import annotations

import logging

import pytest

from tests.integration.api.api_support import (
    PASSWORD,
    V1,
    Api,
    Route,
    assert_problem,
    expect,
    json_routes,
)

DEEP = 10_000  # levels; the body stays far below the 64 KiB limit
UNDECODABLE = {
    "invalid UTF-8 in a string": b'{"username": "\xc3\x28", "password": "x"}',
    "a UTF-16 byte order mark": b'\xff\xfe{"username": "a"}',
    "an encoded surrogate": b'{"username": "\xed\xa0\x80"}',
    "Latin-1 text": '{"username": "Jörg"}'.encode("latin-1"),
    "arrays nested 10,000 deep": b"[" * DEEP + b"]" * DEEP,
    "objects nested 10,000 deep": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "a field nested 10,000 deep": b'{"username": ' + b"[" * DEEP + b"]" * DEEP + b"}",
}
NOT_JSON = {
    "text/plain": "text/plain",
    "text/plain with charset": "text/plain;charset=UTF-8",
    "a form": "application/x-www-form-urlencoded",
    "a multipart form": "multipart/form-data; boundary=xyz",
    "XML": "application/xml",
    "text/json": "text/json",
    "no content type": None,
}
JSON_TYPES = ("application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json")


def callers(api: Api) -> dict[str, dict[str, str]]:
    return {"anonymous": {}, "admin": api.admin_headers}


def target(api: Api, route: Route) -> str:
    assert api.admin is not None
    return route.path(user_id=api.admin.id, session_id=api.admin.id)


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    logged = [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]
    assert not logged, [f"{record.name}: {record.getMessage()}" for record in logged]


@pytest.mark.req("SRS-150", "SRS-051")
async def test_undecodable_bodies_are_400_problems_on_every_json_route(
    sqlite_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = sqlite_api
    caplog.set_level(logging.INFO)
    for route in json_routes(api.app):
        for who, headers in callers(api).items():
            for name, raw in UNDECODABLE.items():
                response = await api.client.request(
                    route.method,
                    target(api, route),
                    content=raw,
                    headers={**headers, "Content-Type": "application/json"},
                )
                where = f"{route.method} {route.template} ({who}, {name})"
                assert response.status_code == 400, f"{where}: {response.status_code} {response.text[:300]}"
                body = assert_problem(response, 400, "body")
                assert body["code"] == "invalid_input", (where, body)
                assert "Traceback" not in response.text
    no_errors_logged(caplog)


@pytest.mark.req("SRS-150")
async def test_bodies_that_are_not_json_get_415_on_every_json_route(
    sqlite_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = sqlite_api
    caplog.set_level(logging.INFO)
    for route in json_routes(api.app):
        for who, headers in callers(api).items():
            for name, media_type in NOT_JSON.items():
                sent = {**headers, **({"Content-Type": media_type} if media_type else {})}
                response = await api.client.request(route.method, target(api, route), content=b"{}", headers=sent)
                where = f"{route.method} {route.template} ({who}, {name})"
                assert response.status_code == 415, f"{where}: {response.status_code} {response.text[:300]}"
                assert assert_problem(response, 415)["code"] == "unsupported_media_type", where
            for media_type in JSON_TYPES:  # JSON by any spelling is read (and its unknown field refused)
                response = await api.client.request(
                    route.method,
                    target(api, route),
                    content=b'{"no_such_field": 1}',
                    headers={**headers, "Content-Type": media_type},
                )
                assert_problem(response, 400, "no_such_field")
    no_errors_logged(caplog)


@pytest.mark.req("SRS-150")
async def test_a_cross_site_simple_post_cannot_log_in_or_register(sqlite_api: Api) -> None:
    """What a browser sends from another site without a preflight: text/plain or a form, carrying JSON."""
    api = sqlite_api
    await api.register("csrf_target")
    login = b'{"username_or_email": "csrf_target", "password": "%s"}' % PASSWORD.encode()
    register = b'{"username": "planted", "email": "planted@example.com", "password": "%s"}' % PASSWORD.encode()
    for media_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"):
        response = await api.client.post(f"{V1}/auth/login", content=login, headers={"Content-Type": media_type})
        assert_problem(response, 415)
        assert "access_token" not in response.text
        response = await api.client.post(f"{V1}/auth/register", content=register, headers={"Content-Type": media_type})
        assert_problem(response, 415)
    assert_problem(await api.try_login("planted"), 401)  # no account was made


@pytest.mark.req("SRS-155")
async def test_unknown_fields_are_a_400_naming_each_of_them(sqlite_api: Api) -> None:
    api = sqlite_api
    user = await api.register("speller", first_name="Ada")
    response = await api.client.patch(f"{V1}/users/{user.id}", json={"firstname": "Eve"}, headers=user.headers)
    body = assert_problem(response, 400, "firstname")
    assert body["code"] == "invalid_input"
    assert "firstname" in str(body["errors"])
    unchanged = expect(await api.client.get(f"{V1}/users/{user.id}", headers=user.headers), 200)
    assert unchanged["first_name"] == "Ada"

    response = await api.client.post(
        f"{V1}/auth/register",
        json={"username": "extra", "email": "extra@example.com", "password": PASSWORD, "nickname": "x", "is_admin": 1},
    )
    assert_problem(response, 400, "nickname", "is_admin")
    assert_problem(await api.try_login("extra"), 401)  # nothing was created


@pytest.mark.req("SRS-155")
async def test_every_json_route_refuses_an_unknown_field(sqlite_api: Api) -> None:
    api = sqlite_api
    for route in json_routes(api.app):
        for who, headers in callers(api).items():
            response = await api.client.request(
                route.method, target(api, route), json={"no_such_field": True}, headers=headers
            )
            where = f"{route.method} {route.template} ({who})"
            assert response.status_code == 400, f"{where}: {response.status_code} {response.text[:300]}"
            assert_problem(response, 400, "no_such_field")
    # The admin's session survived every one of those (revoke-all with an unknown field revoked nothing).
    expect(await api.me(api.admin.access if api.admin else ""), 200)


@pytest.mark.req("SRS-143")
async def test_a_field_of_the_wrong_json_type_is_a_400_naming_it(sqlite_api: Api) -> None:
    """schemathesis found ``{"keep_current": 0}`` taken as false: Litestar converts bodies leniently."""
    api = sqlite_api
    user = await api.register("typist")
    for body, field in (
        ({"keep_current": 0}, "keep_current"),
        ({"keep_current": "true"}, "keep_current"),
    ):
        response = await api.client.post(f"{V1}/auth/sessions/revoke-all", json=body, headers=user.headers)
        assert_problem(response, 400, field)
    expect(await api.me(user.access), 200)  # nothing was revoked
    assert api.admin is not None
    response = await api.client.put(f"{V1}/users/{user.id}/status", json={"status": 1}, headers=api.admin_headers)
    assert_problem(response, 400, "status")
    response = await api.client.post(
        f"{V1}/auth/register", json={"username": ["a"], "email": "arr@example.com", "password": PASSWORD}
    )
    assert_problem(response, 400, "username")
    # The right types still pass, and no body at all still means keep_current=false.
    expect(
        await api.client.post(f"{V1}/auth/sessions/revoke-all", json={"keep_current": True}, headers=user.headers), 200
    )
    expect(await api.me(user.access), 200)
    expect(await api.client.post(f"{V1}/auth/sessions/revoke-all", headers=user.headers), 200)
    assert_problem(await api.me(user.access), 401)
