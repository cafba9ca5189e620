"""User administration, self-service, password change, status/role/verify: the same outcome over both protocols."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from tests.contract.clients import (
    NEW_PASSWORD,
    PASSWORD,
    Client,
    Outcome,
    Tokens,
    assert_same_user,
    assert_user,
    fails,
    login,
    ok,
    register,
    tokens,
    unique,
)
from tests.contract.conftest import ADMIN_USERNAME, scenario
from tests.contract.transcript import varying, volatile

pytestmark = pytest.mark.req("SRS-060")


async def create_user(client: Client, admin: Tokens, username: str, **extra: Any) -> dict[str, Any]:
    outcome = await client.create_user(admin.access, username, f"{username}@example.org", PASSWORD, **extra)
    return assert_user(ok(outcome), username=username, email=f"{username}@example.org")


# --- list: paging and filters -----------------------------------------------------------------------------------


@scenario
async def test_list_pages_through_users_in_a_stable_order(client: Client, admin: Tokens) -> None:
    prefix = unique("pg")
    created = [await create_user(client, admin, f"{prefix}{letter}") for letter in "abcde"]

    everything = ok(await client.list_users(admin.access, q=prefix))
    assert (everything["page"], everything["per_page"], everything["total"], everything["total_pages"]) == (1, 20, 5, 1)
    for user in everything["items"]:
        assert_user(user)
    keys = [(user["created_at"], user["id"]) for user in everything["items"]]
    assert keys == sorted(keys), "ordered by created_at, then id"
    assert {user["id"] for user in everything["items"]} == {user["id"] for user in created}

    seen: list[str] = []
    for page in (1, 2, 3):
        body = ok(await client.list_users(admin.access, page=page, per_page=2, q=prefix))
        assert (body["page"], body["per_page"], body["total"], body["total_pages"]) == (page, 2, 5, 3)
        assert len(body["items"]) == (2 if page < 3 else 1)
        seen += [user["id"] for user in body["items"]]
    assert seen == [user["id"] for user in everything["items"]]

    beyond = ok(await client.list_users(admin.access, page=4, per_page=2, q=prefix))
    assert (beyond["items"], beyond["total"]) == ([], 5)
    last = ok(await client.list_users(admin.access, page=2, per_page=4, q=prefix))
    assert [user["id"] for user in last["items"]] == seen[4:]
    assert last["total_pages"] == 2
    with varying("total", "total_pages"):  # the shared server has more users by the second run
        unfiltered = ok(await client.list_users(admin.access, per_page=1))
    assert unfiltered["items"][0]["username"] == ADMIN_USERNAME, "the first admin is the oldest account"
    assert unfiltered["total"] >= 6


@scenario
async def test_list_filters_by_role_status_and_prefix(client: Client, admin: Tokens) -> None:
    prefix = unique("fl")
    guest = await create_user(client, admin, f"{prefix}_guest", role="guest")
    await create_user(client, admin, f"{prefix}_user")
    other = await create_user(client, admin, f"{prefix}_omega")
    ok(await client.set_status(admin.access, other["id"], "suspended"))

    async def names(**query: Any) -> list[str]:
        body = ok(await client.list_users(admin.access, **query))
        assert body["total"] == len(body["items"])
        return sorted(user["username"] for user in body["items"])

    assert await names(q=prefix, role="guest") == [f"{prefix}_guest"]
    assert await names(q=prefix, role="user") == [f"{prefix}_omega", f"{prefix}_user"]
    assert await names(q=prefix, role="admin") == []
    assert await names(q=ADMIN_USERNAME, role="admin") == [ADMIN_USERNAME]
    assert await names(q=prefix, status="suspended") == [f"{prefix}_omega"]
    assert await names(q=prefix, status="active") == [f"{prefix}_guest", f"{prefix}_user"]
    assert await names(q=f"{prefix}_g") == [f"{prefix}_guest"]
    assert await names(q=f"{prefix}_omega@example") == [f"{prefix}_omega"]  # an email prefix
    assert await names(q=prefix[1:]) == []  # a prefix, not a substring
    assert await names(q="%") == []  # LIKE wildcards are literal
    assert await names(q="_") == []
    assert guest["role"] == "guest"


@scenario
async def test_list_rejects_out_of_range_paging(client: Client, admin: Tokens) -> None:
    for query in ({"per_page": 101}, {"per_page": -1}, {"page": -3}, {"per_page": 1000}):
        fails(await client.list_users(admin.access, **cast(dict[str, Any], query)), "invalid")
    for per_page in (1, 100):
        with varying("items", "total", "total_pages"):  # the whole shared server's users
            assert ok(await client.list_users(admin.access, per_page=per_page))["per_page"] == per_page
    # An unknown role or status is a bad filter, named like a bad value for update (not an empty page).
    assert fails(await client.list_users(admin.access, role="superuser"), "invalid", "role").fields == {"role"}
    assert fails(await client.list_users(admin.access, status="banned"), "invalid", "status").fields == {"status"}


@scenario
async def test_list_is_for_admins_only(client: Client) -> None:
    user = await register(client, unique("plain"))
    fails(await client.list_users(user.access), "forbidden")
    fails(await client.list_users(None), "unauthenticated")


# --- CRUD and self-service --------------------------------------------------------------------------------------


@scenario
async def test_admin_creates_reads_updates_and_deletes_a_user(client: Client, admin: Tokens) -> None:
    name = unique("hank")
    created = await create_user(client, admin, name, first_name="Hank", last_name="Hill", role="guest")
    assert_user(created, role="guest", status="active", first_name="Hank", last_name="Hill", last_login_at=None)
    user_id = created["id"]

    fetched = assert_user(ok(await client.get_user(admin.access, user_id)), id=user_id, username=name, role="guest")
    assert_same_user(fetched, created)
    assert (await login(client, name)).id == user_id

    patched = assert_user(
        ok(
            await client.update_user(
                admin.access, user_id, last_name="Rutherford", phone="+1 555 0100", role="user", status="inactive"
            )
        ),
        first_name="Hank",  # untouched: the update is partial
        last_name="Rutherford",
        phone="+1 555 0100",
        role="user",
        status="inactive",
    )
    assert patched["updated_at"] >= created["updated_at"]
    assert_same_user(ok(await client.get_user(admin.access, user_id)), patched)

    assert ok(await client.delete_user(admin.access, user_id)) is None
    fails(await client.get_user(admin.access, user_id), "not_found")
    fails(await client.delete_user(admin.access, user_id), "not_found")
    fails(await client.login(name, PASSWORD), "unauthenticated")
    assert ok(await client.list_users(admin.access, q=name))["items"] == []


@scenario
async def test_admin_create_rejects_duplicates_and_invalid_fields(client: Client, admin: Tokens) -> None:
    name = unique("ivy")
    await create_user(client, admin, name)
    fails(await client.create_user(admin.access, name.upper(), f"{name}2@example.org", PASSWORD), "conflict")
    fails(await client.create_user(admin.access, f"{name}2", f"{name}@example.org", PASSWORD), "conflict")
    fails(
        await client.create_user(admin.access, "x", "not-an-email", "short", role="emperor"),
        "invalid",
        "username",
        "email",
        "password",
    )


@scenario
async def test_non_admins_cannot_administer(client: Client, admin: Tokens) -> None:
    mallory = await register(client, unique("mallory"))
    victim = await register(client, unique("victim"))
    sneaky = unique("sneaky")
    fails(await client.create_user(mallory.access, sneaky, f"{sneaky}@example.org", PASSWORD), "forbidden")
    fails(await client.get_user(mallory.access, victim.id), "forbidden")
    fails(await client.update_user(mallory.access, victim.id, first_name="Pwned"), "forbidden")
    fails(await client.delete_user(mallory.access, victim.id), "forbidden")
    fails(await client.delete_user(mallory.access, mallory.id), "forbidden")
    fails(await client.set_status(mallory.access, victim.id, "suspended"), "forbidden")
    fails(await client.set_role(mallory.access, mallory.id, "admin"), "forbidden")
    fails(await client.verify(mallory.access, mallory.id), "forbidden")
    assert_user(ok(await client.get_user(victim.access, victim.id)), first_name="")

    fails(await client.get_user(None, victim.id), "unauthenticated")
    fails(await client.update_user(None, victim.id, first_name="x"), "unauthenticated")
    fails(await client.delete_user(None, victim.id), "unauthenticated")
    fails(await client.create_user(None, sneaky, f"{sneaky}@example.org", PASSWORD), "unauthenticated")
    fails(await client.set_status(None, victim.id, "active"), "unauthenticated")
    fails(await client.set_role(None, victim.id, "user"), "unauthenticated")
    fails(await client.verify(None, victim.id), "unauthenticated")
    fails(await client.change_password(None, victim.id, PASSWORD, NEW_PASSWORD), "unauthenticated")
    assert ok(await client.list_users(admin.access, q=sneaky))["items"] == []


@scenario
async def test_self_service_read_and_update_but_not_role_or_status(client: Client) -> None:
    name = unique("nora")
    me = await register(client, name)
    assert_user(ok(await client.get_user(me.access, me.id)), id=me.id, username=name)
    email = f"{name}.B@Example.ORG"
    patched = assert_user(
        ok(
            await client.update_user(
                me.access,
                me.id,
                first_name="Nora",
                last_name="Batty",
                avatar_url="https://example.org/nora.png",
                email=email,
            )
        ),
        first_name="Nora",
        last_name="Batty",
        avatar_url="https://example.org/nora.png",
        email=email.lower(),
        role="user",
    )
    assert ok(await client.me(me.access))["email"] == email.lower()

    for forbidden in ({"role": "admin"}, {"status": "active"}, {"status": "suspended"}, {"role": "guest"}):
        fails(await client.update_user(me.access, me.id, **forbidden), "forbidden")
    after = ok(await client.get_user(me.access, me.id))
    assert (after["role"], after["status"], after["first_name"]) == ("user", "active", patched["first_name"])
    fails(await client.set_role(me.access, me.id, "admin"), "forbidden")
    fails(await client.set_status(me.access, me.id, "active"), "forbidden")
    fails(await client.verify(me.access, me.id), "forbidden")


@scenario
async def test_update_validates_fields(client: Client, admin: Tokens) -> None:
    me = await register(client, unique("oscar"))
    fails(await client.update_user(me.access, me.id, email="nope"), "invalid", "email")
    fails(await client.update_user(admin.access, me.id, role="emperor"), "invalid", "role")
    fails(await client.update_user(admin.access, me.id, status="banned"), "invalid", "status")
    assert_user(ok(await client.get_user(admin.access, me.id)), role="user", status="active")


@scenario
async def test_unknown_user_ids_are_not_found(client: Client, admin: Tokens) -> None:
    missing = str(uuid.uuid4())
    fails(await client.get_user(admin.access, missing), "not_found")
    fails(await client.update_user(admin.access, missing, first_name="x"), "not_found")
    fails(await client.delete_user(admin.access, missing), "not_found")
    fails(await client.set_status(admin.access, missing, "active"), "not_found")
    fails(await client.set_role(admin.access, missing, "user"), "not_found")
    fails(await client.verify(admin.access, missing), "not_found")
    for malformed in ("not-a-uuid", "1"):  # an id that cannot exist is simply not found
        fails(await client.get_user(admin.access, malformed), "not_found")


# --- password change --------------------------------------------------------------------------------------------


@scenario
async def test_password_change_revokes_other_sessions_and_swaps_the_password(client: Client) -> None:
    name = unique("uma")
    caller = await register(client, name)
    other = await login(client, name)
    bystander = await register(client, unique("vera"))

    assert ok(await client.change_password(caller.access, caller.id, PASSWORD, NEW_PASSWORD)) is None
    ok(await client.me(caller.access))  # the calling session keeps working
    fails(await client.me(other.access), "unauthenticated")
    fails(await client.refresh(other.refresh), "unauthenticated")
    ok(await client.me(bystander.access))
    fails(await client.login(name, PASSWORD), "unauthenticated")
    assert (await login(client, name, NEW_PASSWORD)).id == caller.id
    tokens(await client.refresh(caller.refresh))


@scenario
async def test_password_change_needs_the_current_password(client: Client) -> None:
    name = unique("wade")
    caller = await register(client, name)
    other = await login(client, name)
    fails(
        await client.change_password(caller.access, caller.id, "definitely-not-it-99", NEW_PASSWORD),
        "invalid",
        "current_password",
    )
    assert (await login(client, name)).id == caller.id
    ok(await client.me(other.access))
    fails(await client.login(name, NEW_PASSWORD), "unauthenticated")


@scenario
async def test_password_change_applies_the_policy_and_is_self_only(client: Client) -> None:
    name = unique("xavier")
    caller = await register(client, name)
    stranger = await register(client, unique("yvonne"))
    for new_password in ("short7!", "password123", "x" * 129):
        fails(await client.change_password(caller.access, caller.id, PASSWORD, new_password), "invalid", "new_password")
    fails(await client.change_password(caller.access, caller.id, "", ""), "invalid", "current_password", "new_password")
    fails(await client.change_password(stranger.access, caller.id, PASSWORD, NEW_PASSWORD), "forbidden")
    assert (await login(client, name)).id == caller.id


# --- status, role, verify ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["suspended", "inactive"])
@scenario
async def test_suspending_revokes_sessions_and_blocks_login(client: Client, admin: Tokens, status: str) -> None:
    name = unique("paula")
    one = await register(client, name)
    two = await login(client, name)
    bystander = await register(client, unique("quentin"))

    assert_user(ok(await client.set_status(admin.access, one.id, status)), id=one.id, status=status)
    for session in (one, two):
        fails(await client.me(session.access), "unauthenticated")
        fails(await client.refresh(session.refresh), "unauthenticated")
    fails(await client.login(name, PASSWORD), "unauthenticated")
    ok(await client.me(bystander.access))

    assert_user(ok(await client.set_status(admin.access, one.id, "active")), status="active")
    back = await login(client, name)
    ok(await client.me(back.access))
    fails(await client.refresh(two.refresh), "unauthenticated")  # old sessions stay dead


@scenario
async def test_role_change_and_verification(client: Client, admin: Tokens) -> None:
    name = unique("rita")
    user = await register(client, name)
    assert user.user["is_verified"] is False

    assert_user(ok(await client.verify(admin.access, user.id)), id=user.id, is_verified=True)
    assert ok(await client.me(user.access))["is_verified"] is True

    assert_user(ok(await client.set_role(admin.access, user.id, "admin")), id=user.id, role="admin")
    with varying("total", "total_pages"):
        ok(await client.list_users(user.access, per_page=1))  # applies from the next call, same token
    as_admin = await login(client, name)
    assert as_admin.user["role"] == "admin"

    assert_user(ok(await client.set_role(admin.access, user.id, "guest")), role="guest")
    as_guest = await login(client, name)
    fails(await client.list_users(as_guest.access), "forbidden")
    fails(await client.list_users(as_admin.access), "forbidden")


@scenario
async def test_status_and_role_values_are_validated(client: Client, admin: Tokens) -> None:
    user = await register(client, unique("steve"))
    fails(await client.set_status(admin.access, user.id, "banned"), "invalid", "status")
    fails(await client.set_status(admin.access, user.id, ""), "invalid", "status")
    fails(await client.set_role(admin.access, user.id, "root"), "invalid", "role")
    fails(await client.set_role(admin.access, user.id, ""), "invalid", "role")
    unchanged = ok(await client.get_user(admin.access, user.id))
    assert (unchanged["role"], unchanged["status"]) == ("user", "active")


Attack = Callable[[Client, Tokens], Awaitable[Outcome]]


@pytest.mark.parametrize(
    ("attack", "kind", "fields"),
    [
        pytest.param(lambda c, a: c.login("root\x00", PASSWORD), "unauthenticated", (), id="nul after a username"),
        pytest.param(lambda c, a: c.login("\x00", "\x00" * 10), "unauthenticated", (), id="nul login"),
        pytest.param(lambda c, a: c.login("' OR 1=1 --", "' OR 1=1 --"), "unauthenticated", (), id="sql in login"),
        pytest.param(
            lambda c, a: c.login("x" * 5000, "y" * 5000),
            "invalid",
            ("username_or_email", "password"),
            id="oversized login",
        ),
        pytest.param(
            lambda c, a: c.register("nul\x00l", "n\x00@example.com", "p\x00" * 8),
            "invalid",
            ("username", "email", "password"),
            id="nul in register",
        ),
        pytest.param(
            lambda c, a: c.register(unique("emoji") + "😀", f"{unique('e')}@example.com", PASSWORD),
            "invalid",
            ("username",),
            id="emoji username",
        ),
        pytest.param(
            lambda c, a: c.register(unique("ok"), volatile(f"ü{uuid.uuid4().hex[:8]}@exämple.com"), PASSWORD),
            "ok",
            (),
            id="non-ascii email",
        ),
        pytest.param(lambda c, a: c.refresh("\x00" * 100), "unauthenticated", (), id="nul refresh token"),
        pytest.param(
            lambda c, a: c.list_users(a.access, page=2**31 - 1, per_page=10),
            "invalid",
            ("page",),
            id="largest page",
        ),
        pytest.param(lambda c, a: c.list_users(a.access, q="a" * 255), "invalid", ("q",), id="oversized q"),
        pytest.param(lambda c, a: c.refresh("r" * 16385), "invalid", ("refresh_token",), id="oversized refresh"),
        pytest.param(lambda c, a: c.list_users(a.access, q="\x00'\""), "ok", (), id="nul and quotes in q"),
        pytest.param(lambda c, a: c.get_user(a.access, "..%2F..%2Fetc%2Fpasswd"), "not_found", (), id="path in id"),
        pytest.param(lambda c, a: c.get_user(a.access, "a" * 5000), "not_found", (), id="oversized id"),
        pytest.param(lambda c, a: c.revoke_session(a.access, "z" * 3000), "not_found", (), id="oversized session"),
    ],
)
@pytest.mark.req("SRS-062")
@scenario
async def test_attack_inputs_never_fail_internally(
    client: Client, admin: Tokens, attack: Attack, kind: str, fields: tuple[str, ...]
) -> None:
    """No 5xx, UNKNOWN or INTERNAL (the clients fail the test on those), and the one expected answer."""
    with varying("total", "total_pages"):  # the shared server's user count grows between the two runs
        outcome = await attack(client, admin)
    if kind == "ok":
        body = ok(outcome)
        if "items" in body:
            assert body["items"] == [], body
        else:
            assert_user(body["user"], role="user", status="active")
    else:
        fails(outcome, kind, *fields)
        assert outcome.fields == frozenset(fields), outcome
