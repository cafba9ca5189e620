"""The public ReqRes-compatible read-only endpoints (SRS-050)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.api.api_support import PASSWORD, PUBLIC, V1, Api, assert_no_password_hash, assert_problem, expect

PUBLIC_FIELDS = {"id", "email", "first_name", "last_name", "avatar"}


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
    assert (body["page"], body["per_page"], body["total"], body["total_pages"]) == (1, 2, 4, 2)
    assert len(body["data"]) == 2
    for item in body["data"]:
        assert set(item) == PUBLIC_FIELDS, item
        assert "username" not in item
        assert "role" not in item

    second = expect(await api.client.get(f"{PUBLIC}/users?page=2&per_page=2"), 200)
    assert second["page"] == 2
    ids = [item["id"] for item in body["data"] + second["data"]]
    assert sorted(ids) == sorted(user["id"] for user in everyone)
    assert len(set(ids)) == 4

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
    admin_id = sqlite_api.admin.id if sqlite_api.admin else ""
    for path in (f"{PUBLIC}/users", f"{PUBLIC}/users/{admin_id}"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = await sqlite_api.client.request(
                method, path, json={"name": "morpheus", "job": "leader"}, headers=sqlite_api.admin_headers
            )
            assert_problem(response, 405)
    # Nothing was changed or deleted.
    expect(await sqlite_api.client.get(f"{PUBLIC}/users/{admin_id}"), 200)


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
        assert listing["total"] == 1  # only the admin
