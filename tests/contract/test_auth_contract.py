"""Register, login, refresh rotation and reuse detection, logout, bad tokens: the same outcome over both protocols."""

from __future__ import annotations

import asyncio
import string
import uuid
from typing import Any

import jwt
import pytest

from tests.contract.clients import (
    PASSWORD,
    Client,
    Tokens,
    assert_user,
    fails,
    login,
    ok,
    register,
    tokens,
    unique,
)
from tests.contract.conftest import LiveServer, scenario
from tests.contract.transcript import unordered, volatile

NO_KEY: Any = None  # alg "none" signs with no key; PyJWT's types do not say so

pytestmark = pytest.mark.req("SRS-060")
# 3-character usernames: only test_boundary_values_are_accepted makes them, every live server has a fresh
# database, and this iterator never repeats one in a process, so they cannot collide (no retry on conflict).
SHORT_NAMES = iter(f"{letter}.{digit}" for letter in string.ascii_lowercase for digit in string.digits)


# --- register ---------------------------------------------------------------------------------------------------


@scenario
async def test_register_returns_the_user_and_a_working_token_pair(client: Client) -> None:
    name = unique("Alice.Smith")
    made = tokens(await client.register(name, f"{name.upper()}@Example.COM", PASSWORD, "Alice", "Smith"))
    assert_user(
        made.user,
        username=name,
        email=f"{name}@example.com",
        first_name="Alice",
        last_name="Smith",
        role="user",
        status="active",
        is_verified=False,
        phone="",
        avatar_url="",
    )
    assert made.body["expires_in"] == 900
    me = assert_user(ok(await client.me(made.access)), id=made.id, username=name, email=f"{name}@example.com")
    assert me["created_at"] == made.user["created_at"]
    assert tokens(await client.refresh(made.refresh)).id == made.id


@scenario
async def test_register_rejects_a_taken_username_in_any_case_and_a_taken_email(client: Client, admin: Tokens) -> None:
    name = unique("bob")
    await register(client, name)
    first = fails(await client.register(name.upper(), f"other-{name}@example.com", PASSWORD), "conflict")
    second = fails(await client.register(f"r{name}", f"{name.upper()}@Example.com", PASSWORD), "conflict")
    assert first.code == second.code
    # Neither attempt created an account.
    listing = ok(await client.list_users(admin.access, q=f"r{name}"))
    assert listing["items"] == []
    listing = ok(await client.list_users(admin.access, q=name))
    assert [user["username"] for user in listing["items"]] == [name]


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"password": "seven77"}, "password"),
        ({"password": "y" * 129}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "PassWord123"}, "password"),
        ({"password": "qwerty123"}, "password"),
        ({"username": "ab"}, "username"),
        ({"username": "a" * 33}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "semi;colon"}, "username"),
        ({"username": "ünïcødé"}, "username"),
        ({"username": "null\x00byte"}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"email": ""}, "email"),
    ],
    ids=lambda value: repr(value)[:40] if isinstance(value, dict) else value,
)
@pytest.mark.req("SRS-062")
@scenario
async def test_register_rejects_policy_violations(client: Client, fields: dict[str, str], bad_field: str) -> None:
    name = unique("policy")
    values = {"username": name, "email": f"{name}@example.com", "password": PASSWORD} | fields
    fails(await client.register(values["username"], values["email"], values["password"]), "invalid", bad_field)


@pytest.mark.req("SRS-062")
@scenario
async def test_every_bad_register_field_is_named_at_once(client: Client) -> None:
    outcome = fails(await client.register("x", "nope", "short"), "invalid", "username", "email", "password")
    assert outcome.fields == {"username", "email", "password"}
    outcome = fails(await client.register("", "", ""), "invalid", "username", "email", "password")
    assert outcome.fields == {"username", "email", "password"}


@scenario
async def test_boundary_values_are_accepted(client: Client) -> None:
    long_name = volatile(("Ab_c.d-e" + uuid.uuid4().hex)[:32])
    long_password = "p" * 120 + "-unique7"
    assert (len(long_name), len(long_password)) == (32, 128)
    made = tokens(await client.register(long_name, f"{long_name.upper()}@EXAMPLE.com", long_password))
    assert_user(made.user, username=long_name, email=f"{long_name.lower()}@example.com")
    assert (await login(client, f"{long_name.lower()}@example.com", long_password)).id == made.id
    short = volatile(next(SHORT_NAMES))
    assert len(short) == 3
    assert_user(tokens(await client.register(short, f"{short}@example.com", "lilac-91")).user, username=short)


# --- login ------------------------------------------------------------------------------------------------------


@scenario
async def test_login_by_username_or_email_records_last_login(client: Client) -> None:
    name = unique("carol")
    registered = await register(client, name)
    by_name = await login(client, name)
    by_email = await login(client, f"{name}@example.com")
    assert by_name.id == by_email.id == registered.id
    assert by_email.user["last_login_at"] is not None
    assert by_name.access != by_email.access
    assert by_name.refresh != by_email.refresh
    ok(await client.me(by_name.access))
    ok(await client.me(by_email.access))


@scenario
async def test_login_failures_are_indistinguishable(client: Client, admin: Tokens) -> None:
    name, suspended, inactive = unique("dave"), unique("erin"), unique("frank")
    await register(client, name)
    for who, status in ((suspended, "suspended"), (inactive, "inactive")):
        made = await register(client, who)
        assert_user(ok(await client.set_status(admin.access, made.id, status)), status=status)
    attempts = {
        "wrong password": await client.login(name, "not-the-password-at-all"),
        "wrong password by email": await client.login(f"{name}@example.com", "not-the-password-at-all"),
        "unknown user": await client.login(unique("nobody"), PASSWORD),
        "unknown email": await client.login(f"{unique('nobody')}@example.com", PASSWORD),
        "suspended": await client.login(suspended, PASSWORD),
        "inactive": await client.login(inactive, PASSWORD),
    }
    reference = fails(attempts["wrong password"], "unauthenticated")
    for what, outcome in attempts.items():
        fails(outcome, "unauthenticated")
        assert outcome == reference, f"{what} answered differently: {outcome} vs {reference}"
        # The human-readable message must not leak which check failed either.
        assert outcome.message == reference.message, f"{what}: {outcome.message!r} vs {reference.message!r}"
        assert outcome.message


@scenario
async def test_login_with_missing_fields_is_refused(client: Client) -> None:
    # Empty credentials are a failed login like any other (SRS-041: one 401), not a validation error.
    outcome = fails(await client.login("", ""), "unauthenticated")
    assert outcome.fields == frozenset()


# --- refresh and reuse detection ------------------------------------------------------------------------------


@scenario
async def test_refresh_rotates_the_pair_and_kills_the_old_refresh_token(client: Client) -> None:
    first = await register(client, unique("grace"))
    second = tokens(await client.refresh(first.refresh))
    assert second.id == first.id
    assert (second.refresh, second.access) != (first.refresh, first.access)
    ok(await client.me(second.access))
    third = tokens(await client.refresh(second.refresh))
    assert third.refresh not in {first.refresh, second.refresh}
    ok(await client.me(third.access))


@scenario
async def test_refresh_rejects_garbage_and_access_tokens(client: Client) -> None:
    made = await register(client, unique("heidi"))
    for token in ("garbage", "a" * 5000, made.access, made.refresh + "x", made.refresh[:-1], "", "null\x00byte"):
        outcome = fails(await client.refresh(token), "unauthenticated")
        assert outcome.fields == frozenset(), token
    # None of the failures touched the real session.
    tokens(await client.refresh(made.refresh))


@scenario
async def test_refresh_token_is_not_an_access_token(client: Client) -> None:
    made = await register(client, unique("ivan"))
    fails(await client.me(made.refresh), "unauthenticated")


@scenario
async def test_reusing_a_rotated_refresh_token_revokes_the_session(client: Client) -> None:
    name = unique("judy")
    victim = await register(client, name)
    other_session = await login(client, name)
    rotated = tokens(await client.refresh(victim.refresh))
    # The stolen (already rotated) token is presented again: the whole family dies (grace is 0 here).
    fails(await client.refresh(victim.refresh), "unauthenticated")
    fails(await client.refresh(rotated.refresh), "unauthenticated")
    fails(await client.me(rotated.access), "unauthenticated")
    # Only that session's family: the user's other session is untouched.
    ok(await client.me(other_session.access))
    tokens(await client.refresh(other_session.refresh))


@scenario
async def test_concurrent_refreshes_of_one_token_do_not_fork_the_family(client: Client) -> None:
    made = await register(client, unique("lena"))
    with unordered():  # which of the four wins is a race
        outcomes = await asyncio.gather(*(client.refresh(made.refresh) for _ in range(4)))
    assert sorted(outcome.kind for outcome in outcomes) == ["ok"] + ["unauthenticated"] * 3, outcomes
    for loser in (outcome for outcome in outcomes if outcome.kind != "ok"):
        fails(loser, "unauthenticated")
    winner = tokens(next(outcome for outcome in outcomes if outcome.kind == "ok"))
    assert winner.id == made.id
    # Whether a loser's concurrent presentation already counted as reuse depends on its clock reading against
    # the winner's spend; presenting the spent token now, after the rotation, is reuse (grace is 0 here):
    # the one family is revoked, the winner's pair with it.
    fails(await client.refresh(made.refresh), "unauthenticated")
    fails(await client.me(winner.access), "unauthenticated")
    fails(await client.refresh(winner.refresh), "unauthenticated")


# --- logout -----------------------------------------------------------------------------------------------------


@scenario
async def test_logout_kills_the_session_access_and_refresh_tokens(client: Client) -> None:
    name = unique("mallory")
    leaving = await register(client, name)
    staying = await login(client, name)
    assert ok(await client.logout(leaving.access)) is None
    fails(await client.me(leaving.access), "unauthenticated")
    fails(await client.refresh(leaving.refresh), "unauthenticated")
    fails(await client.logout(leaving.access), "unauthenticated")
    ok(await client.me(staying.access))
    tokens(await client.refresh(staying.refresh))


@scenario
async def test_logout_without_a_token_is_unauthenticated(client: Client) -> None:
    fails(await client.logout(None), "unauthenticated")


# --- bad credentials --------------------------------------------------------------------------------------------


def bad_authorizations(secret: str) -> dict[str, str]:
    other_key = "another-secret-of-enough-length-0123456789"
    now = 1_700_000_000
    claims = {"iss": "arcana", "aud": "arcana", "sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()), "jti": "j"}
    return {
        "no scheme": "abc.def.ghi",
        "bearer with nothing": "Bearer",
        "basic scheme": "Basic dXNlcjpwYXNz",
        "not a jwt": "Bearer not-a-jwt",
        "three dots": "Bearer ...",
        "bad base64": "Bearer @@@.###.$$$",
        "long": "Bearer " + "a" * 5000,
        "other key": "Bearer " + jwt.encode({**claims, "exp": now + 10**8, "iat": now}, other_key, algorithm="HS256"),
        "expired": "Bearer " + jwt.encode({**claims, "exp": now, "iat": now - 60}, secret, algorithm="HS256"),
        "unknown session": "Bearer "
        + jwt.encode({**claims, "exp": now + 10**8, "iat": now, "role": "admin"}, secret, algorithm="HS256"),
        "alg none": "Bearer " + jwt.encode({**claims, "exp": now + 10**8, "iat": now}, NO_KEY, algorithm="none"),
        "json header": 'Bearer {"alg":"none"}',
    }


@pytest.mark.req("SRS-062")
@scenario
async def test_every_bad_authorization_is_unauthenticated(client: Client, live_server: LiveServer) -> None:
    outcomes = {
        name: await client.me_with_authorization(header)
        for name, header in bad_authorizations(live_server.jwt_secret()).items()
    }
    for name, outcome in outcomes.items():
        assert outcome.kind == "unauthenticated", f"{name}: {outcome}"
        fails(outcome, "unauthenticated")
    assert len({outcome.code for outcome in outcomes.values()}) == 1
    fails(await client.me(None), "unauthenticated")


@pytest.mark.req("SRS-062")
@scenario
async def test_forged_tokens_for_a_real_session_are_rejected(client: Client, live_server: LiveServer) -> None:
    made = await register(client, unique("quinn"))
    secret = live_server.jwt_secret()
    good = jwt.decode(made.access, secret, algorithms=["HS256"], audience="arcana", issuer="arcana")
    header = jwt.get_unverified_header(made.access)
    now = int(good["iat"])

    def sign(claims: dict[str, object], key: str = secret) -> str:
        return jwt.encode(claims, key, algorithm="HS256", headers=header)

    forged = {
        "other key": sign(good, "another-secret-of-enough-length-0123456789"),
        "expired": sign({**good, "iat": now - 7200, "exp": now - 3600}),
        "wrong audience": sign({**good, "aud": "someone-else"}),
        "wrong issuer": sign({**good, "iss": "evil"}),
        "unknown subject": sign({**good, "sub": str(uuid.uuid4())}),
        "unknown session": sign({**good, "sid": str(uuid.uuid4())}),
        "tampered payload": made.access[:-4] + ("AAAA" if not made.access.endswith("AAAA") else "BBBB"),
    }
    for name, token in forged.items():
        outcome = await client.me(token)
        assert outcome.kind == "unauthenticated", f"{name}: {outcome}"
        fails(outcome, "unauthenticated")
    ok(await client.me(made.access))


# --- identity hygiene (SRS-172, SRS-173, SRS-174) -------------------------------------------------------------


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(char) + 0xFEE0) if char.isalnum() else char for char in text)


@pytest.mark.req("SRS-172", "SRS-173", "SRS-174")
@scenario
async def test_confusable_names_invisible_characters_and_context_passwords_are_refused(client: Client) -> None:
    name = unique("hygiene")
    email = volatile(f"{name}@example.com")
    bad_names = await client.register(name, email, PASSWORD, first_name="Ann\u200b", last_name="\x1b[31mLee")
    fails(bad_names, "invalid", "first_name", "last_name")
    fails(await client.register(name, email, f"my {name} password"), "invalid", "password")
    fails(await client.register(name, email, "          "), "invalid", "password")
    made = await register(client, name)
    for confusable in (_fullwidth(name), "å" + name[1:], name[:3] + "\u200b" + name[3:]):
        fails(await client.login(confusable, PASSWORD), "unauthenticated")
    ok(await client.login(name.upper(), PASSWORD))
    fails(await client.update_user(made.access, made.id, phone="+1\x00555"), "invalid", "phone")
