"""Register, login, refresh rotation and reuse, logout; tokens and hashes checked with third-party libraries."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import argon2
import jwt
import pytest
import sqlalchemy as sa

from py_app.infra.db import create_engine
from tests.integration.api.api_support import (
    ADMIN_USERNAME,
    JWT_SECRET,
    PASSWORD,
    V1,
    Api,
    assert_problem,
    assert_token_response,
    assert_user,
    expect,
    parse_time,
)
from tests.integration.api.conftest import OpenApi

# --- register (SRS-040) -----------------------------------------------------------------------------------------


@pytest.mark.req("SRS-040")
async def test_register_returns_the_user_and_a_working_token_pair(api: Api) -> None:
    response = await api.client.post(
        f"{V1}/auth/register",
        json={
            "username": "Alice.Smith",
            "email": "Alice.Smith@Example.COM",
            "password": PASSWORD,
            "first_name": "Alice",
            "last_name": "Smith",
        },
    )
    login = assert_token_response(response, 201)
    assert_user(
        login.user,
        username="Alice.Smith",
        email="alice.smith@example.com",
        first_name="Alice",
        last_name="Smith",
        role="user",
        status="active",
        is_verified=False,
    )
    assert login.body["expires_in"] == api.settings.access_token_ttl

    me = expect(await api.me(login.access), 200)
    assert_user(me, id=login.id, username="Alice.Smith", email="alice.smith@example.com")
    refreshed = assert_token_response(await api.refresh(login.refresh), 200)
    assert refreshed.id == login.id


@pytest.mark.req("SRS-040")
async def test_register_rejects_a_taken_username_in_any_case_and_a_taken_email(api: Api) -> None:
    await api.register("bob", email="bob@example.com")

    same_name = await api.client.post(
        f"{V1}/auth/register", json={"username": "BOB", "email": "other@example.com", "password": PASSWORD}
    )
    first = assert_problem(same_name, 409)
    same_email = await api.client.post(
        f"{V1}/auth/register", json={"username": "robert", "email": "Bob@Example.com", "password": PASSWORD}
    )
    second = assert_problem(same_email, 409)
    assert first["type"] == second["type"], "the conflict problem type should be stable"

    # Neither attempt created an account.
    listing = expect(await api.client.get(f"{V1}/users", headers=api.admin_headers), 200)
    assert sorted(user["username"] for user in listing["items"]) == sorted([ADMIN_USERNAME, "bob"])


# --- login (SRS-041) --------------------------------------------------------------------------------------------


@pytest.mark.req("SRS-041")
async def test_login_by_username_or_email_records_last_login(api: Api) -> None:
    registered = await api.register("carol", email="carol@example.com")
    assert registered.user["last_login_at"] is None or parse_time(registered.user["last_login_at"])

    by_name = await api.login("carol")
    by_email = await api.login("carol@example.com")
    assert by_name.id == by_email.id == registered.id
    assert by_name.body["expires_in"] == api.settings.access_token_ttl
    assert by_email.user["last_login_at"] is not None
    parse_time(by_email.user["last_login_at"])
    # Two logins are two sessions: different token pairs, both working.
    assert by_name.access != by_email.access
    assert by_name.refresh != by_email.refresh
    expect(await api.me(by_name.access), 200)
    expect(await api.me(by_email.access), 200)


@pytest.mark.req("SRS-041", "SRS-049")
async def test_login_failures_are_indistinguishable(api: Api) -> None:
    wrong_password = await api.register("dave")
    suspended = await api.register("erin")
    inactive = await api.register("frank")
    for login, status in ((suspended, "suspended"), (inactive, "inactive")):
        response = await api.client.put(
            f"{V1}/users/{login.id}/status", json={"status": status}, headers=api.admin_headers
        )
        assert_user(expect(response, 200), status=status)

    attempts = {
        "wrong password": await api.try_login("dave", "not-the-password-at-all"),
        "wrong password by email": await api.try_login("dave@example.com", "not-the-password-at-all"),
        "unknown user": await api.try_login("nobody_here", PASSWORD),
        "unknown email": await api.try_login("nobody@example.com", PASSWORD),
        "suspended": await api.try_login("erin", PASSWORD),
        "inactive": await api.try_login("frank", PASSWORD),
    }
    bodies = {name: assert_problem(response, 401) for name, response in attempts.items()}
    reference = bodies["wrong password"]
    for name, body in bodies.items():
        assert body == reference, f"{name} answered differently: {body} vs {reference}"
    assert wrong_password.id  # the account exists; only the password was wrong


@pytest.mark.req("SRS-041", "SRS-051")
async def test_login_with_missing_fields_is_a_validation_problem(sqlite_api: Api) -> None:
    response = await sqlite_api.client.post(f"{V1}/auth/login", json={})
    assert response.status_code in (400, 401), response.text
    assert_problem(response, response.status_code)


# --- refresh (SRS-042, SRS-043) ---------------------------------------------------------------------------------


@pytest.mark.req("SRS-042")
async def test_refresh_rotates_the_pair_and_kills_the_old_refresh_token(api: Api) -> None:
    first = await api.register("grace")
    second = assert_token_response(await api.refresh(first.refresh), 200)
    assert second.id == first.id
    assert second.refresh != first.refresh
    assert second.access != first.access
    expect(await api.me(second.access), 200)

    third = assert_token_response(await api.refresh(second.refresh), 200)
    assert third.refresh not in {first.refresh, second.refresh}
    expect(await api.me(third.access), 200)

    # The first token's child is spent now: presenting it is reuse, and the session ends.
    assert_problem(await api.refresh(first.refresh), 401)
    assert_problem(await api.refresh(third.refresh), 401)
    assert_problem(await api.me(third.access), 401)


@pytest.mark.req("SRS-042", "SRS-051")
async def test_refresh_rejects_garbage_and_access_tokens(sqlite_api: Api) -> None:
    login = await sqlite_api.register("heidi")
    for token in ("garbage", "a" * 5000, login.access, login.refresh + "x", login.refresh[:-1]):
        assert_problem(await sqlite_api.refresh(token), 401)
    for token in ("", "null\x00byte"):
        response = await sqlite_api.refresh(token)
        assert response.status_code in (400, 401), response.text
        assert_problem(response, response.status_code)
    # None of the failures above touched the real session.
    assert_token_response(await sqlite_api.refresh(login.refresh), 200)


@pytest.mark.req("SRS-042")
async def test_refresh_token_is_not_an_access_token(sqlite_api: Api) -> None:
    login = await sqlite_api.register("ivan")
    assert_problem(await sqlite_api.me(login.refresh), 401)


@pytest.mark.req("SRS-043")
async def test_reusing_a_rotated_refresh_token_revokes_the_session(open_api: OpenApi, database_url: str) -> None:
    async with open_api(database_url=database_url, refresh_reuse_grace=0) as api:
        victim = await api.register("judy")
        other_session = await api.login("judy")
        rotated = assert_token_response(await api.refresh(victim.refresh), 200)

        # The stolen (already rotated) token is presented again: the whole family dies.
        assert_problem(await api.refresh(victim.refresh), 401)
        assert_problem(await api.refresh(rotated.refresh), 401)
        assert_problem(await api.me(rotated.access), 401)

        # Only that session's family: the user's other session is untouched.
        expect(await api.me(other_session.access), 200)
        assert_token_response(await api.refresh(other_session.refresh), 200)


@pytest.mark.req("SRS-043")
async def test_a_second_tab_inside_the_grace_window_gets_the_same_child(api: Api) -> None:
    login = await api.register("kim")
    rotated = assert_token_response(await api.refresh(login.refresh), 200)
    second_tab = assert_token_response(await api.refresh(login.refresh), 200)
    assert second_tab.refresh == rotated.refresh
    assert second_tab.access != rotated.access
    # Within the grace window the family survives: both tabs work, and the child rotates on.
    expect(await api.me(rotated.access), 200)
    expect(await api.me(second_tab.access), 200)
    assert_token_response(await api.refresh(rotated.refresh), 200)


@pytest.mark.req("SRS-043")
async def test_concurrent_refreshes_of_one_token_do_not_fork_the_family(api: Api) -> None:
    login = await api.register("lena")
    responses = await asyncio.gather(*(api.refresh(login.refresh) for _ in range(4)))
    pairs = [assert_token_response(response, 200) for response in responses]  # within the grace, all four tabs
    assert len({pair.refresh for pair in pairs}) == 1, "one child: the family did not fork"

    next_pair = assert_token_response(await api.refresh(pairs[0].refresh), 200)
    expect(await api.me(next_pair.access), 200)
    # The original token's child is spent now: presenting it again is reuse and ends the session.
    assert_problem(await api.refresh(login.refresh), 401)
    assert_problem(await api.me(next_pair.access), 401)


# --- logout (SRS-044) -------------------------------------------------------------------------------------------


@pytest.mark.req("SRS-044")
async def test_logout_kills_the_session_access_and_refresh_tokens(api: Api) -> None:
    leaving = await api.register("mallory")
    staying = await api.login("mallory")

    response = await api.client.post(f"{V1}/auth/logout", headers=leaving.headers)
    expect(response, 204)
    assert response.content == b""

    assert_problem(await api.me(leaving.access), 401)
    assert_problem(await api.refresh(leaving.refresh), 401)
    assert_problem(await api.client.post(f"{V1}/auth/logout", headers=leaving.headers), 401)
    # Other sessions of the same user are not affected.
    expect(await api.me(staying.access), 200)
    assert_token_response(await api.refresh(staying.refresh), 200)


@pytest.mark.req("SRS-044", "SRS-051")
async def test_logout_without_a_token_is_401(sqlite_api: Api) -> None:
    assert_problem(await sqlite_api.client.post(f"{V1}/auth/logout"), 401)


# --- tokens and hashes with third-party libraries (SRS-053) -----------------------------------------------------


def decode(token: str, secret: str | bytes) -> dict[str, object]:
    return jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        audience="arcana",
        issuer="arcana",
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )


@pytest.mark.req("SRS-053")
async def test_access_tokens_verify_with_pyjwt(api: Api) -> None:
    first = await api.register("nina")
    second = await api.login("nina")
    header = jwt.get_unverified_header(first.access)
    assert header["alg"] == "HS256"
    assert header["typ"] == "at+jwt"

    claims = decode(first.access, JWT_SECRET)
    assert claims["sub"] == first.id
    assert claims["role"] == "user"
    assert isinstance(claims["jti"], str)
    assert isinstance(claims["sid"], str)
    assert claims["sid"]
    assert isinstance(claims["exp"], int)
    assert isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == api.settings.access_token_ttl

    other = decode(second.access, JWT_SECRET)
    assert other["sid"] != claims["sid"], "two logins must be two sessions"
    assert other["jti"] != claims["jti"]
    admin = decode(api.admin_headers["Authorization"].removeprefix("Bearer "), JWT_SECRET)
    assert admin["role"] == "admin"

    # The session id in the token is the one the sessions endpoint reports as current.
    sessions = expect(await api.client.get(f"{V1}/auth/sessions", headers=first.headers), 200)["items"]
    assert [s["id"] for s in sessions if s["current"]] == [claims["sid"]]

    with pytest.raises(jwt.InvalidSignatureError):
        decode(first.access, "another-secret-of-enough-length-0123456789")

    # Refresh tokens are opaque (not JWTs) with at least 256 bits encoded.
    assert first.refresh.count(".") < 2
    assert len(first.refresh) >= 43


@pytest.mark.req("SRS-053", "SRS-004")
async def test_development_key_under_data_dir_signs_the_tokens(open_api: OpenApi) -> None:
    async with open_api(jwt_secret=None, with_admin=False) as api:
        login = await api.register("olivia")
        from pathlib import Path

        secret = (Path(api.settings.data_dir) / "jwt_secret").read_text().strip()
        assert decode(login.access, secret)["sub"] == login.id


@pytest.mark.req("SRS-053", "SRS-052")
async def test_stored_password_hashes_verify_with_argon2_cffi(api: Api) -> None:
    login = await api.register("peggy", password="a quite long passphrase with spaces ✓")
    engine = create_engine(api.settings.effective_database_url)
    try:
        async with engine.connect() as connection:
            stored = (
                await connection.execute(sa.text("SELECT password_hash FROM users WHERE id = :id"), {"id": login.id})
            ).scalar_one()
    finally:
        await engine.dispose()
    assert stored.startswith("$argon2id$")
    hasher = argon2.PasswordHasher()
    assert hasher.verify(stored, "a quite long passphrase with spaces ✓")
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        hasher.verify(stored, PASSWORD)


@pytest.mark.req("SRS-053", "SRS-051")
async def test_forged_and_expired_tokens_are_rejected(sqlite_api: Api) -> None:
    login = await sqlite_api.register("quinn")
    good = decode(login.access, JWT_SECRET)
    header = jwt.get_unverified_header(login.access)
    now = int(good["iat"])  # type: ignore[call-overload]

    def sign(claims: dict[str, object], key: str = JWT_SECRET, **extra_header: object) -> str:
        return jwt.encode(claims, key, algorithm="HS256", headers={**header, **extra_header})

    forged = {
        "other key": sign(good, "another-secret-of-enough-length-0123456789"),
        "expired": sign({**good, "iat": now - 7200, "exp": now - 3600}),
        "wrong audience": sign({**good, "aud": "someone-else"}),
        "wrong issuer": sign({**good, "iss": "evil"}),
        "unknown subject": sign({**good, "sub": str(uuid.uuid4())}),
        "unknown session": sign({**good, "sid": str(uuid.uuid4())}),
        "alg none": jwt.encode(good, cast(Any, None), algorithm="none"),
        "tampered payload": login.access[:-4] + ("AAAA" if not login.access.endswith("AAAA") else "BBBB"),
    }
    for name, token in forged.items():
        response = await sqlite_api.me(token)
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
        assert_problem(response, 401)
    expect(await sqlite_api.me(login.access), 200)
