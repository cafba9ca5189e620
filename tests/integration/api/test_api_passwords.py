"""Password change (SRS-048) and the input policy for passwords, usernames and emails (SRS-052)."""

from __future__ import annotations

import pytest

from tests.integration.api.api_support import PASSWORD, V1, Api, assert_problem, assert_user, expect

NEW_PASSWORD = "maroon-glacier-teapot-73"

# --- password change (SRS-048) ----------------------------------------------------------------------------------


@pytest.mark.req("SRS-048")
async def test_password_change_revokes_other_sessions_and_swaps_the_password(api: Api) -> None:
    caller = await api.register("uma")
    other = await api.login("uma")
    bystander = await api.register("vera")

    response = await api.client.put(
        f"{V1}/users/{caller.id}/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=caller.headers,
    )
    expect(response, 204)

    expect(await api.me(caller.access), 200)  # the calling session keeps working
    assert_problem(await api.me(other.access), 401)
    assert_problem(await api.refresh(other.refresh), 401)
    expect(await api.me(bystander.access), 200)

    assert_problem(await api.try_login("uma", PASSWORD), 401)
    assert (await api.login("uma", NEW_PASSWORD)).id == caller.id
    # The caller's session can still rotate.
    expect(await api.refresh(caller.refresh), 200)


@pytest.mark.req("SRS-048")
async def test_password_change_needs_the_current_password(api: Api) -> None:
    caller = await api.register("wade")
    other = await api.login("wade")
    response = await api.client.put(
        f"{V1}/users/{caller.id}/password",
        json={"current_password": "definitely-not-it-99", "new_password": NEW_PASSWORD},
        headers=caller.headers,
    )
    assert_problem(response, 400, "current_password")
    # Nothing changed: old password works, other session alive.
    assert (await api.login("wade", PASSWORD)).id == caller.id
    expect(await api.me(other.access), 200)
    assert_problem(await api.try_login("wade", NEW_PASSWORD), 401)


@pytest.mark.req("SRS-048", "SRS-052")
async def test_password_change_applies_the_policy_and_is_self_only(sqlite_api: Api) -> None:
    api = sqlite_api
    caller = await api.register("xavier")
    stranger = await api.register("yvonne")
    path = f"{V1}/users/{caller.id}/password"
    for new_password in ("short7!", "password123", "x" * 129):
        response = await api.client.put(
            path, json={"current_password": PASSWORD, "new_password": new_password}, headers=caller.headers
        )
        assert_problem(response, 400, "new_password")
    missing = await api.client.put(path, json={}, headers=caller.headers)
    assert_problem(missing, 400, "current_password", "new_password")

    attempt = await api.client.put(
        path, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=stranger.headers
    )
    assert_problem(attempt, 403)
    assert_problem(await api.client.put(path, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}), 401)
    assert (await api.login("xavier", PASSWORD)).id == caller.id


# --- policy (SRS-052) -------------------------------------------------------------------------------------------


async def register_raw(api: Api, **fields: object) -> object:
    body = {"username": "policy_user", "email": "policy@example.com", "password": PASSWORD} | fields
    return await api.client.post(f"{V1}/auth/register", json=body)


@pytest.mark.req("SRS-052", "SRS-040")
@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"password": "seven77"}, "password"),  # 7 characters
        ({"password": "y" * 129}, "password"),
        ({"password": "password123"}, "password"),  # in the common list
        ({"password": "PassWord123"}, "password"),  # the list is case-insensitive
        ({"password": "qwerty123"}, "password"),
        ({"username": "ab"}, "username"),
        ({"username": "a" * 33}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "semi;colon"}, "username"),
        ({"username": "ünïcødé"}, "username"),
        ({"username": "用户名字"}, "username"),
        ({"username": "null\x00byte"}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"email": ""}, "email"),
    ],
    ids=lambda value: repr(value)[:40] if isinstance(value, dict) else value,
)
async def test_register_rejects_policy_violations(sqlite_api: Api, fields: dict[str, object], bad_field: str) -> None:
    response = await register_raw(sqlite_api, **fields)
    assert_problem(response, 400, bad_field)  # type: ignore[arg-type]


@pytest.mark.req("SRS-052", "SRS-051")
async def test_every_bad_field_is_named_at_once(sqlite_api: Api) -> None:
    response = await register_raw(sqlite_api, username="x", email="nope", password="short")
    body = assert_problem(response, 400, "username", "email", "password")  # type: ignore[arg-type]
    assert len({error["field"] for error in body["errors"]}) >= 3
    missing = await sqlite_api.client.post(f"{V1}/auth/register", json={})
    assert_problem(missing, 400, "username", "email", "password")


@pytest.mark.req("SRS-052")
async def test_boundary_values_are_accepted(sqlite_api: Api) -> None:
    short = await sqlite_api.register("abc", password="lilac-91")  # 3-char username, 8-char password
    assert_user(short.user, username="abc")
    long_name = "A" * 10 + "b_c.d-e" + "9" * 15  # 32 characters of the allowed alphabet
    assert len(long_name) == 32
    long_password = "p" * 120 + "-unique7"  # 128 characters
    assert len(long_password) == 128
    long = await sqlite_api.register(long_name, password=long_password, email="Long.Name@EXAMPLE.com")
    assert_user(long.user, username=long_name, email="long.name@example.com")
    assert (await sqlite_api.login("long.name@example.com", long_password)).id == long.id
    assert (await sqlite_api.login("abc", "lilac-91")).id == short.id
