"""Error contract (SRS-051): problem+json everywhere, 401 with WWW-Authenticate, 413, malformed JSON, never 500."""

from __future__ import annotations

import json
import uuid
from typing import Any

import jwt
import pytest

from tests.integration.api.api_support import JWT_SECRET, PASSWORD, PUBLIC, V1, Api, assert_problem, expect

NO_KEY: Any = None  # alg "none" signs with no key; PyJWT's types do not say so

PROTECTED = [
    ("POST", "/auth/logout"),
    ("GET", "/auth/me"),
    ("GET", "/auth/sessions"),
    ("DELETE", "/auth/sessions/{id}"),
    ("POST", "/auth/sessions/revoke-all"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/users/{id}"),
    ("PATCH", "/users/{id}"),
    ("DELETE", "/users/{id}"),
    ("PUT", "/users/{id}/password"),
    ("PUT", "/users/{id}/status"),
    ("PUT", "/users/{id}/role"),
    ("POST", "/users/{id}/verify"),
]


def bad_authorizations() -> dict[str, str]:
    other_key = "another-secret-of-enough-length-0123456789"
    now = 1_700_000_000
    claims = {"iss": "arcana", "aud": "arcana", "sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()), "jti": "j"}
    return {
        "no scheme": "abc.def.ghi",
        "bearer with nothing": "Bearer",
        "bearer with a space": "Bearer ",
        "basic scheme": "Basic dXNlcjpwYXNz",
        "not a jwt": "Bearer not-a-jwt",
        "three dots": "Bearer ...",
        "bad base64": "Bearer @@@.###.$$$",
        "huge": "Bearer " + "a" * 20_000,
        "other key": "Bearer " + jwt.encode({**claims, "exp": now + 10**8, "iat": now}, other_key, algorithm="HS256"),
        "expired": "Bearer " + jwt.encode({**claims, "exp": now, "iat": now - 60}, JWT_SECRET, algorithm="HS256"),
        "alg none": "Bearer " + jwt.encode({**claims, "exp": now + 10**8, "iat": now}, NO_KEY, algorithm="none"),
        "json header": 'Bearer {"alg":"none"}',
    }


@pytest.mark.req("SRS-051")
async def test_every_protected_route_answers_401_problem_without_or_with_a_bad_token(sqlite_api: Api) -> None:
    api = sqlite_api
    assert api.admin is not None
    for method, template in PROTECTED:
        path = V1 + template.format(id=api.admin.id)
        body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
        response = await api.client.request(method, path, json=body)
        assert response.status_code == 401, f"{method} {path}: {response.status_code} {response.text}"
        assert_problem(response, 401)
    # Every kind of bad Authorization header, on one representative route, is a 401 problem.
    types = set()
    for name, header in bad_authorizations().items():
        response = await api.client.get(f"{V1}/auth/me", headers={"Authorization": header})
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
        types.add(assert_problem(response, 401)["type"])
    assert len(types) == 1, f"the 401 problem type should be stable: {types}"


@pytest.mark.req("SRS-051")
async def test_problem_types_are_stable_and_distinct(sqlite_api: Api) -> None:
    api = sqlite_api
    user = await api.register("tessa")
    forbidden = [assert_problem(await api.client.get(f"{V1}/users", headers=user.headers), 403) for _ in range(2)]
    missing = [
        assert_problem(await api.client.get(f"{V1}/users/{uuid.uuid4()}", headers=api.admin_headers), 404)
        for _ in range(2)
    ]
    unauthorized = assert_problem(await api.client.get(f"{V1}/users"), 401)
    invalid = assert_problem(await api.client.get(f"{V1}/users?per_page=0", headers=api.admin_headers), 400)
    conflict = assert_problem(
        await api.client.post(
            f"{V1}/auth/register", json={"username": "tessa", "email": "t2@example.com", "password": PASSWORD}
        ),
        409,
    )
    assert forbidden[0]["type"] == forbidden[1]["type"]
    assert missing[0]["type"] == missing[1]["type"]
    kinds = [forbidden[0]["type"], missing[0]["type"], unauthorized["type"], invalid["type"], conflict["type"]]
    assert len(set(kinds)) == len(kinds), kinds


@pytest.mark.req("SRS-051")
async def test_malformed_json_is_a_400_problem(sqlite_api: Api) -> None:
    api = sqlite_api
    headers = {"Content-Type": "application/json"}
    for raw in (b"{not json", b'{"username": "a",', b"\xff\xfe\x00", b"[1, 2", b'"just a string"', b"[]", b"null"):
        response = await api.client.post(f"{V1}/auth/register", content=raw, headers=headers)
        assert response.status_code == 400, f"{raw!r}: {response.status_code} {response.text}"
        assert_problem(response, 400)
    response = await api.client.post(f"{V1}/auth/login", content=b"{", headers=headers)
    assert_problem(response, 400)
    response = await api.client.patch(
        f"{V1}/users/{api.admin.id if api.admin else ''}", content=b"{", headers={**headers, **api.admin_headers}
    )
    assert_problem(response, 400)


@pytest.mark.req("SRS-051")
async def test_wrong_types_name_the_field(sqlite_api: Api) -> None:
    response = await sqlite_api.client.post(
        f"{V1}/auth/register", json={"username": 12345, "email": "a@example.com", "password": PASSWORD}
    )
    assert_problem(response, 400, "username")
    response = await sqlite_api.client.post(
        f"{V1}/auth/register", json={"username": "typed", "email": ["a@example.com"], "password": PASSWORD}
    )
    assert_problem(response, 400, "email")


@pytest.mark.req("SRS-051")
async def test_oversized_body_is_a_413_problem(sqlite_api: Api) -> None:
    api = sqlite_api
    big = json.dumps({"username": "big", "email": "big@example.com", "password": PASSWORD, "first_name": "x" * 70_000})
    response = await api.client.post(
        f"{V1}/auth/register", content=big.encode(), headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413)
    response = await api.client.patch(
        f"{V1}/users/{api.admin.id if api.admin else ''}",
        content=json.dumps({"first_name": "y" * 66_000}).encode(),
        headers={"Content-Type": "application/json", **api.admin_headers},
    )
    assert_problem(response, 413)
    # A body just under the limit is not refused for its size.
    near = json.dumps({"username_or_email": "nobody", "password": "p" * 60_000})
    response = await api.client.post(
        f"{V1}/auth/login", content=near.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 401), response.text


@pytest.mark.req("SRS-051")
async def test_attack_inputs_never_cause_a_500(sqlite_api: Api) -> None:
    api = sqlite_api
    attempts = [
        ("POST", f"{V1}/auth/login", {"username_or_email": "root_admin\x00", "password": PASSWORD}),
        ("POST", f"{V1}/auth/login", {"username_or_email": "\x00", "password": "\x00" * 10}),
        ("POST", f"{V1}/auth/login", {"username_or_email": "' OR 1=1 --", "password": "' OR 1=1 --"}),
        ("POST", f"{V1}/auth/login", {"username_or_email": "x" * 5000, "password": "y" * 5000}),
        ("POST", f"{V1}/auth/login", {"username_or_email": None, "password": None}),
        (
            "POST",
            f"{V1}/auth/register",
            {"username": "nul\x00l", "email": "n\x00@example.com", "password": "p\x00" * 8},
        ),
        ("POST", f"{V1}/auth/register", {"username": "emoji😀", "email": "e@example.com", "password": PASSWORD}),
        ("POST", f"{V1}/auth/register", {"username": "ok_name", "email": "ü@exämple.com", "password": PASSWORD}),
        ("POST", f"{V1}/auth/refresh", {"refresh_token": "\x00" * 100}),
        ("POST", f"{V1}/auth/refresh", {"refresh_token": 12}),
        ("GET", f"{V1}/users?page=99999999999999999999999&per_page=10", None),
        ("GET", f"{V1}/users?page=9223372036854775807", None),
        ("GET", f"{V1}/users?per_page=1e9", None),
        ("GET", f"{V1}/users?q=%00%27%22", None),
        ("GET", f"{V1}/users?q=%25", None),
        ("GET", f"{V1}/users?q=_", None),
        ("GET", f"{V1}/users/..%2F..%2Fetc%2Fpasswd", None),
        ("GET", f"{V1}/users/{'a' * 5000}", None),
        ("GET", f"{PUBLIC}/users?page=9223372036854775808", None),
        ("GET", f"{PUBLIC}/users/%00", None),
        ("DELETE", f"{V1}/auth/sessions/%00", None),
        ("DELETE", f"{V1}/auth/sessions/{'z' * 3000}", None),
    ]
    for method, path, body in attempts:
        response = await api.client.request(method, path, json=body, headers=api.admin_headers)
        assert response.status_code < 500, f"{method} {path} {body!r}: {response.status_code} {response.text}"
        if response.status_code >= 400:
            assert_problem(response, response.status_code)

    # LIKE wildcards in q are literal: "%" and "_" match no username prefix here.
    for wildcard in ("%25", "_"):
        listing = expect(await api.client.get(f"{V1}/users?q={wildcard}", headers=api.admin_headers), 200)
        assert listing["items"] == [], f"q={wildcard} matched {listing['items']}"
