"""User administration: list with paging and filters, CRUD, self-service, status/role/verify (SRS-046, 047, 049)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.api.api_support import (
    ADMIN_USERNAME,
    PASSWORD,
    V1,
    Api,
    Login,
    assert_no_password_hash,
    assert_problem,
    assert_user,
    expect,
    parse_time,
)

# --- list (SRS-046) ---------------------------------------------------------------------------------------------


async def create_user(api: Api, username: str, **extra: object) -> dict[str, object]:
    response = await api.client.post(
        f"{V1}/users",
        json={"username": username, "email": f"{username}@example.org", "password": PASSWORD, **extra},
        headers=api.admin_headers,
    )
    assert_no_password_hash(response)
    return assert_user(expect(response, 201), username=username, email=f"{username}@example.org")


@pytest.mark.req("SRS-046")
async def test_list_pages_through_every_user_in_a_stable_order(api: Api) -> None:
    for name in ("amber", "basil", "cedar", "delta", "ember"):
        await create_user(api, name)

    response = await api.client.get(f"{V1}/users", headers=api.admin_headers)
    assert_no_password_hash(response)
    everything = expect(response, 200)
    assert everything["page"] == 1
    assert everything["per_page"] == 20
    assert everything["total"] == 6
    assert everything["total_pages"] == 1
    for user in everything["items"]:
        assert_user(user)
    keys = [(parse_time(user["created_at"]), user["id"]) for user in everything["items"]]
    assert keys == sorted(keys), "ordered by created_at, then id"
    assert everything["items"][0]["username"] == ADMIN_USERNAME

    seen: list[str] = []
    for page in (1, 2, 3):
        body = expect(await api.client.get(f"{V1}/users?page={page}&per_page=2", headers=api.admin_headers), 200)
        assert (body["page"], body["per_page"], body["total"], body["total_pages"]) == (page, 2, 6, 3)
        assert len(body["items"]) == 2
        seen += [user["id"] for user in body["items"]]
    assert seen == [user["id"] for user in everything["items"]]

    beyond = expect(await api.client.get(f"{V1}/users?page=4&per_page=2", headers=api.admin_headers), 200)
    assert beyond["items"] == []
    assert beyond["total"] == 6
    last = expect(await api.client.get(f"{V1}/users?page=2&per_page=4", headers=api.admin_headers), 200)
    assert [user["id"] for user in last["items"]] == seen[4:]
    assert last["total_pages"] == 2

    # The same query twice gives the same order.
    again = expect(await api.client.get(f"{V1}/users?page=2&per_page=2", headers=api.admin_headers), 200)
    assert [user["id"] for user in again["items"]] == seen[2:4]


@pytest.mark.req("SRS-046")
async def test_list_filters_by_role_status_and_prefix(api: Api) -> None:
    guest = await create_user(api, "gamma_guest", role="guest")
    await create_user(api, "gamma_user")
    other = await create_user(api, "omega")
    expect(
        await api.client.put(
            f"{V1}/users/{other['id']}/status", json={"status": "suspended"}, headers=api.admin_headers
        ),
        200,
    )

    async def names(query: str) -> list[str]:
        body = expect(await api.client.get(f"{V1}/users?{query}", headers=api.admin_headers), 200)
        assert body["total"] == len(body["items"])
        return sorted(user["username"] for user in body["items"])

    assert await names("role=guest") == ["gamma_guest"]
    assert await names("role=admin") == [ADMIN_USERNAME]
    assert await names("role=user") == ["gamma_user", "omega"]
    assert await names("status=suspended") == ["omega"]
    assert await names("status=active") == sorted([ADMIN_USERNAME, "gamma_guest", "gamma_user"])
    assert await names("q=gamma") == ["gamma_guest", "gamma_user"]
    assert await names("q=gamma_g") == ["gamma_guest"]
    assert await names("q=omega%40example") == ["omega"]  # email prefix
    assert await names("q=mma") == []  # a prefix, not a substring
    assert await names("q=gamma&role=user") == ["gamma_user"]
    assert await names("q=zzz") == []
    assert guest["role"] == "guest"


@pytest.mark.req("SRS-046", "SRS-051")
async def test_list_rejects_out_of_range_paging(sqlite_api: Api) -> None:
    api = sqlite_api
    for query in ("per_page=0", "per_page=101", "per_page=-1", "page=0", "page=-3", "page=abc", "per_page=1.5"):
        response = await api.client.get(f"{V1}/users?{query}", headers=api.admin_headers)
        assert_problem(response, 400)
    for query in ("per_page=1", "per_page=100"):
        body = expect(await api.client.get(f"{V1}/users?{query}", headers=api.admin_headers), 200)
        assert body["per_page"] == int(query.split("=")[1])
    for query in ("role=superuser", "status=banned"):
        response = await api.client.get(f"{V1}/users?{query}", headers=api.admin_headers)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            assert response.json()["items"] == []
        else:
            assert_problem(response, 400)


@pytest.mark.req("SRS-046")
async def test_list_is_for_admins_only(sqlite_api: Api) -> None:
    user = await sqlite_api.register("plain")
    assert_problem(await sqlite_api.client.get(f"{V1}/users", headers=user.headers), 403)
    assert_problem(await sqlite_api.client.get(f"{V1}/users"), 401)


# --- CRUD and self-service (SRS-047) -----------------------------------------------------------------------------


@pytest.mark.req("SRS-047")
async def test_admin_creates_reads_updates_and_deletes_a_user(api: Api) -> None:
    created = await create_user(api, "hank", first_name="Hank", last_name="Hill", role="guest")
    assert_user(created, role="guest", status="active", first_name="Hank", last_name="Hill")
    user_id = created["id"]

    fetched = expect(await api.client.get(f"{V1}/users/{user_id}", headers=api.admin_headers), 200)
    assert_user(fetched, id=user_id, username="hank", role="guest")
    assert fetched["created_at"] == created["created_at"]

    # The created account can log in with the password the admin set.
    login = await api.login("hank")
    assert login.id == user_id

    response = await api.client.patch(
        f"{V1}/users/{user_id}",
        json={"last_name": "Rutherford", "phone": "+1 555 0100", "role": "user", "status": "inactive"},
        headers=api.admin_headers,
    )
    assert_no_password_hash(response)
    patched = assert_user(
        expect(response, 200),
        first_name="Hank",  # untouched: PATCH is partial
        last_name="Rutherford",
        phone="+1 555 0100",
        role="user",
        status="inactive",
    )
    assert parse_time(patched["updated_at"]) >= parse_time(created["updated_at"])
    assert expect(await api.client.get(f"{V1}/users/{user_id}", headers=api.admin_headers), 200) == patched

    expect(await api.client.delete(f"{V1}/users/{user_id}", headers=api.admin_headers), 204)
    assert_problem(await api.client.get(f"{V1}/users/{user_id}", headers=api.admin_headers), 404)
    assert_problem(await api.client.delete(f"{V1}/users/{user_id}", headers=api.admin_headers), 404)
    assert_problem(await api.try_login("hank"), 401)
    listing = expect(await api.client.get(f"{V1}/users", headers=api.admin_headers), 200)
    assert user_id not in {user["id"] for user in listing["items"]}


@pytest.mark.req("SRS-047", "SRS-040")
async def test_admin_create_rejects_duplicates_and_invalid_fields(sqlite_api: Api) -> None:
    api = sqlite_api
    await create_user(api, "ivy")
    duplicate = await api.client.post(
        f"{V1}/users",
        json={"username": "IVY", "email": "ivy2@example.org", "password": PASSWORD},
        headers=api.admin_headers,
    )
    assert_problem(duplicate, 409)
    invalid = await api.client.post(
        f"{V1}/users",
        json={"username": "x", "email": "not-an-email", "password": "short", "role": "emperor"},
        headers=api.admin_headers,
    )
    assert_problem(invalid, 400, "username", "email", "password")


@pytest.mark.req("SRS-047")
async def test_non_admins_cannot_administer(sqlite_api: Api) -> None:
    api = sqlite_api
    mallory = await api.register("mallory")
    victim = await api.register("victim")

    assert_problem(
        await api.client.post(
            f"{V1}/users",
            json={"username": "sneaky", "email": "sneaky@example.org", "password": PASSWORD},
            headers=mallory.headers,
        ),
        403,
    )
    assert_problem(await api.client.get(f"{V1}/users/{victim.id}", headers=mallory.headers), 403)
    assert_problem(
        await api.client.patch(f"{V1}/users/{victim.id}", json={"first_name": "Pwned"}, headers=mallory.headers), 403
    )
    assert_problem(await api.client.delete(f"{V1}/users/{victim.id}", headers=mallory.headers), 403)
    assert_problem(await api.client.delete(f"{V1}/users/{mallory.id}", headers=mallory.headers), 403)

    unchanged = expect(await api.client.get(f"{V1}/users/{victim.id}", headers=victim.headers), 200)
    assert_user(unchanged, first_name="")
    for method, path, body in (
        ("GET", f"/users/{victim.id}", None),
        ("PATCH", f"/users/{victim.id}", {"first_name": "x"}),
        ("DELETE", f"/users/{victim.id}", None),
        ("POST", "/users", {"username": "nobody", "email": "n@example.org", "password": PASSWORD}),
    ):
        assert_problem(await api.client.request(method, f"{V1}{path}", json=body), 401)


@pytest.mark.req("SRS-047")
async def test_self_service_read_and_patch_but_not_role_or_status(api: Api) -> None:
    me = await api.register("nora")
    own = expect(await api.client.get(f"{V1}/users/{me.id}", headers=me.headers), 200)
    assert_user(own, id=me.id, username="nora")

    response = await api.client.patch(
        f"{V1}/users/{me.id}",
        json={
            "first_name": "Nora",
            "last_name": "Batty",
            "avatar_url": "https://example.org/nora.png",
            "email": "Nora.B@Example.ORG",
        },
        headers=me.headers,
    )
    patched = assert_user(
        expect(response, 200),
        first_name="Nora",
        last_name="Batty",
        avatar_url="https://example.org/nora.png",
        email="nora.b@example.org",
        role="user",
    )
    assert expect(await api.me(me.access), 200)["email"] == "nora.b@example.org"

    for forbidden in ({"role": "admin"}, {"status": "active"}, {"status": "suspended"}, {"role": "guest"}):
        attempt = await api.client.patch(f"{V1}/users/{me.id}", json=forbidden, headers=me.headers)
        assert_problem(attempt, 403)
    after = expect(await api.client.get(f"{V1}/users/{me.id}", headers=me.headers), 200)
    assert (after["role"], after["status"]) == ("user", "active")
    assert after["first_name"] == patched["first_name"]
    for forbidden_path, forbidden_body in (("role", {"role": "admin"}), ("status", {"status": "active"})):
        assert_problem(
            await api.client.put(f"{V1}/users/{me.id}/{forbidden_path}", json=forbidden_body, headers=me.headers), 403
        )
    assert_problem(await api.client.post(f"{V1}/users/{me.id}/verify", headers=me.headers), 403)


@pytest.mark.req("SRS-047", "SRS-052")
async def test_patch_validates_fields(sqlite_api: Api) -> None:
    me = await sqlite_api.register("oscar")
    bad_email = await sqlite_api.client.patch(user_path(me), json={"email": "nope"}, headers=me.headers)
    assert_problem(bad_email, 400, "email")
    bad_role = await sqlite_api.client.patch(user_path(me), json={"role": "emperor"}, headers=sqlite_api.admin_headers)
    assert_problem(bad_role, 400, "role")
    bad_status = await sqlite_api.client.patch(
        user_path(me), json={"status": "banned"}, headers=sqlite_api.admin_headers
    )
    assert_problem(bad_status, 400, "status")


def user_path(login: Login) -> str:
    return f"{V1}/users/{login.id}"


@pytest.mark.req("SRS-047", "SRS-051")
async def test_unknown_user_ids_are_404(sqlite_api: Api) -> None:
    api = sqlite_api
    missing = uuid.uuid4()
    assert_problem(await api.client.get(f"{V1}/users/{missing}", headers=api.admin_headers), 404)
    assert_problem(
        await api.client.patch(f"{V1}/users/{missing}", json={"first_name": "x"}, headers=api.admin_headers), 404
    )
    assert_problem(await api.client.delete(f"{V1}/users/{missing}", headers=api.admin_headers), 404)
    assert_problem(
        await api.client.put(f"{V1}/users/{missing}/status", json={"status": "active"}, headers=api.admin_headers), 404
    )
    assert_problem(
        await api.client.put(f"{V1}/users/{missing}/role", json={"role": "user"}, headers=api.admin_headers), 404
    )
    assert_problem(await api.client.post(f"{V1}/users/{missing}/verify", headers=api.admin_headers), 404)
    for malformed in ("not-a-uuid", "1", "%00"):
        response = await api.client.get(f"{V1}/users/{malformed}", headers=api.admin_headers)
        assert response.status_code in (400, 404), response.text
        assert_problem(response, response.status_code)


# --- status, role, verify (SRS-049) -----------------------------------------------------------------------------


async def sessions_work(api: Api, login: Login) -> tuple[int, int]:
    return (await api.me(login.access)).status_code, (await api.refresh(login.refresh)).status_code


@pytest.mark.req("SRS-049")
@pytest.mark.parametrize("status", ["suspended", "inactive"])
async def test_suspending_revokes_sessions_and_blocks_login(api: Api, status: str) -> None:
    one = await api.register("paula")
    two = await api.login("paula")
    bystander = await api.register("quentin")

    response = await api.client.put(f"{V1}/users/{one.id}/status", json={"status": status}, headers=api.admin_headers)
    assert_user(expect(response, 200), id=one.id, status=status)
    for login in (one, two):
        assert_problem(await api.me(login.access), 401)
        assert_problem(await api.refresh(login.refresh), 401)
    assert_problem(await api.try_login("paula"), 401)
    expect(await api.me(bystander.access), 200)

    reactivated = await api.client.put(
        f"{V1}/users/{one.id}/status", json={"status": "active"}, headers=api.admin_headers
    )
    assert_user(expect(reactivated, 200), status="active")
    back = await api.login("paula")
    expect(await api.me(back.access), 200)
    # Old sessions stay dead after reactivation.
    assert_problem(await api.refresh(two.refresh), 401)


@pytest.mark.req("SRS-049")
async def test_role_change_and_verification(api: Api) -> None:
    user = await api.register("rita")
    assert user.user["is_verified"] is False

    verified = await api.client.post(f"{V1}/users/{user.id}/verify", headers=api.admin_headers)
    assert_user(expect(verified, 200), id=user.id, is_verified=True)
    assert expect(await api.me(user.access), 200)["is_verified"] is True

    promoted = await api.client.put(f"{V1}/users/{user.id}/role", json={"role": "admin"}, headers=api.admin_headers)
    assert_user(expect(promoted, 200), id=user.id, role="admin")
    # The role applies from the next request, even with the token issued before the change.
    expect(await api.client.get(f"{V1}/users", headers=user.headers), 200)
    as_admin = await api.login("rita")
    assert as_admin.user["role"] == "admin"
    expect(await api.client.get(f"{V1}/users", headers=as_admin.headers), 200)

    demoted = await api.client.put(f"{V1}/users/{user.id}/role", json={"role": "guest"}, headers=api.admin_headers)
    assert_user(expect(demoted, 200), role="guest")
    as_guest = await api.login("rita")
    assert_problem(await api.client.get(f"{V1}/users", headers=as_guest.headers), 403)
    assert_problem(await api.client.get(f"{V1}/users", headers=as_admin.headers), 403)


@pytest.mark.req("SRS-049", "SRS-051")
async def test_status_and_role_values_are_validated(sqlite_api: Api) -> None:
    api = sqlite_api
    user = await api.register("steve")
    for path, body, field in (
        ("status", {"status": "banned"}, "status"),
        ("status", {}, "status"),
        ("role", {"role": "root"}, "role"),
        ("role", {"role": None}, "role"),
    ):
        response = await api.client.put(f"{V1}/users/{user.id}/{path}", json=body, headers=api.admin_headers)
        assert_problem(response, 400, field)
    unchanged = expect(await api.client.get(f"{V1}/users/{user.id}", headers=api.admin_headers), 200)
    assert (unchanged["role"], unchanged["status"]) == ("user", "active")
