"""The public ReqRes-compatible read-only endpoints (SRS-050): off unless switched on, never an admin (SRS-151)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.integration.api.api_support import PASSWORD, PUBLIC, V1, Api, assert_no_password_hash, assert_problem, expect
from tests.integration.api.conftest import OpenApi

PUBLIC_FIELDS = {"id", "email", "first_name", "last_name", "avatar"}


@pytest.fixture
async def api(open_api: OpenApi, database_url: str) -> AsyncIterator[Api]:
    """The API with the directory switched on (ARCANA_PUBLIC_DIRECTORY=on), on each backend."""
    async with open_api(database_url=database_url, public_directory=True) as started:
        yield started


@pytest.fixture
async def sqlite_api(open_api: OpenApi) -> AsyncIterator[Api]:
    async with open_api(public_directory=True) as started:
        yield started


async def create(api: Api, username: str, **extra: str) -> dict[str, str]:
    body = {"username": username, "email": f"{username}@reqres.in", "password": PASSWORD, **extra}
    created: dict[str, str] = expect(await api.client.post(f"{V1}/users", json=body, headers=api.admin_headers), 201)
    return created


@pytest.mark.req("SRS-151")
async def test_the_directory_is_off_by_default(open_api: OpenApi) -> None:
    async with open_api() as api:
        user = await create(api, "quiet")
        for path in (f"{PUBLIC}/users", f"{PUBLIC}/users?page=1", f"{PUBLIC}/users/{user['id']}"):
            for method in ("GET", "HEAD", "POST"):
                response = await api.client.request(method, path)
                assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
                if method != "HEAD":
                    assert_problem(response, 404)
                    assert "quiet" not in response.text
        schema = expect(await api.client.get("/schema/openapi.json"), 200)
        assert not [path for path in schema["paths"] if path.startswith(PUBLIC)], sorted(schema["paths"])


@pytest.mark.req("SRS-151", "SRS-050")
async def test_the_directory_never_shows_an_administrator(api: Api) -> None:
    assert api.admin is not None
    user = await create(api, "plain")
    other_admin = await create(api, "deputy", role="admin")
    promoted = await create(api, "climber")
    expect(
        await api.client.put(f"{V1}/users/{promoted['id']}/role", json={"role": "admin"}, headers=api.admin_headers),
        200,
    )

    listing = expect(await api.client.get(f"{PUBLIC}/users?per_page=100"), 200)
    assert [item["id"] for item in listing["data"]] == [user["id"]]
    assert (listing["total"], listing["total_pages"]) == (1, 1)
    for admin_id in (api.admin.id, other_admin["id"], promoted["id"]):
        response = await api.client.get(f"{PUBLIC}/users/{admin_id}")
        assert_problem(response, 404)
        assert "@reqres.in" not in response.text
        assert "root@" not in response.text
    # Demoted again, the account is an ordinary directory entry.
    expect(
        await api.client.put(f"{V1}/users/{promoted['id']}/role", json={"role": "user"}, headers=api.admin_headers), 200
    )
    expect(await api.client.get(f"{PUBLIC}/users/{promoted['id']}"), 200)


@pytest.mark.req("SRS-050")
async def test_public_list_and_item_in_reqres_shape(api: Api) -> None:
    for name, first, last in (("janet", "Janet", "Weaver"), ("emma", "Emma", "Wong"), ("eve", "Eve", "Holt")):
        response = await api.client.post(
            f"{V1}/users",
            json={
                "username": name,
                "email": f"{name}.{last.lower()}@reqres.in",
                "password": PASSWORD,
                "first_name": first,
                "last_name": last,
            },
            headers=api.admin_headers,
        )
        expect(response, 201)
    everyone = expect(await api.client.get(f"{V1}/users?per_page=100", headers=api.admin_headers), 200)["items"]

    response = await api.client.get(f"{PUBLIC}/users?page=1&per_page=2")  # no token
    assert_no_password_hash(response)
    body = expect(response, 200)
    assert set(body) >= {"page", "per_page", "total", "total_pages", "data"}, body
    assert (body["page"], body["per_page"], body["total"], body["total_pages"]) == (1, 2, 3, 2)
    assert len(body["data"]) == 2
    for item in body["data"]:
        assert set(item) == PUBLIC_FIELDS, item
        assert "username" not in item
        assert "role" not in item

    second = expect(await api.client.get(f"{PUBLIC}/users?page=2&per_page=2"), 200)
    assert second["page"] == 2
    ids = [item["id"] for item in body["data"] + second["data"]]
    assert sorted(ids) == sorted(user["id"] for user in everyone if user["role"] != "admin")
    assert len(set(ids)) == 3

    janet = next(user for user in everyone if user["username"] == "janet")
    one = expect(await api.client.get(f"{PUBLIC}/users/{janet['id']}"), 200)
    assert set(one) >= {"data"}
    assert one["data"] == {
        "id": janet["id"],
        "email": "janet.weaver@reqres.in",
        "first_name": "Janet",
        "last_name": "Weaver",
        "avatar": one["data"]["avatar"],
    }
    assert isinstance(one["data"]["avatar"], str)
    listed = next(item for item in body["data"] + second["data"] if item["id"] == janet["id"])
    assert listed == one["data"]


@pytest.mark.req("SRS-050", "SRS-051")
async def test_public_unknown_user_is_a_404_problem(sqlite_api: Api) -> None:
    assert_problem(await sqlite_api.client.get(f"{PUBLIC}/users/{uuid.uuid4()}"), 404)


@pytest.mark.req("SRS-050", "SRS-051")
async def test_public_endpoints_are_read_only(sqlite_api: Api) -> None:
    user_id = (await create(sqlite_api, "neo"))["id"]
    for path in (f"{PUBLIC}/users", f"{PUBLIC}/users/{user_id}"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = await sqlite_api.client.request(
                method, path, json={"name": "morpheus", "job": "leader"}, headers=sqlite_api.admin_headers
            )
            assert_problem(response, 405)
    # Nothing was changed or deleted.
    expect(await sqlite_api.client.get(f"{PUBLIC}/users/{user_id}"), 200)


@pytest.mark.req("SRS-050", "SRS-051")
async def test_public_paging_is_validated(sqlite_api: Api) -> None:
    for query in ("page=0", "per_page=0", "per_page=101", "page=x"):
        assert_problem(await sqlite_api.client.get(f"{PUBLIC}/users?{query}"), 400)
    huge = await sqlite_api.client.get(f"{PUBLIC}/users?page=99999999999999999999999")
    assert huge.status_code in (200, 400), huge.text
    if huge.status_code == 400:
        assert_problem(huge, 400)
    else:
        assert huge.json()["data"] == []


@pytest.mark.req("SRS-050")
async def test_public_endpoints_show_active_users_only(api: Api) -> None:
    hidden = expect(
        await api.client.post(
            f"{V1}/users",
            json={"username": "hidden", "email": "hidden@reqres.in", "password": PASSWORD},
            headers=api.admin_headers,
        ),
        201,
    )
    expect(await api.client.get(f"{PUBLIC}/users/{hidden['id']}"), 200)
    for status in ("suspended", "inactive"):
        response = await api.client.put(
            f"{V1}/users/{hidden['id']}/status", json={"status": status}, headers=api.admin_headers
        )
        expect(response, 200)
        assert_problem(await api.client.get(f"{PUBLIC}/users/{hidden['id']}"), 404)
        listing = expect(await api.client.get(f"{PUBLIC}/users?per_page=100"), 200)
        assert hidden["id"] not in {item["id"] for item in listing["data"]}
        assert listing["total"] == 0  # the admin is never listed
