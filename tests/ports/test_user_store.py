"""The UserStore port: the same behaviour from the fake, SQLite and MariaDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

import pytest

from py_app.core.errors import Conflict
from py_app.users.models import PasswordChange, Role, Status, UserChanges, UserQuery
from tests.ports.conftest import T0, Stores, digest, make_session, make_user, unique

pytestmark = pytest.mark.req("SRS-082", "SRS-012")
LATER = T0 + timedelta(minutes=5)


async def test_a_user_round_trips_with_utc_microsecond_times(store: Stores) -> None:
    user = make_user(first_name="Zoë", role=Role.GUEST, last_login_at=T0)
    await store.users.add(user)
    loaded = await store.users.get(user.id)
    assert loaded == user
    assert loaded is not None
    assert loaded.created_at.tzinfo is UTC
    assert (loaded.role, loaded.status) == (Role.GUEST, Status.ACTIVE)
    assert await store.users.get("00000000-0000-4000-8000-000000000000") is None


async def test_login_lookup_is_case_insensitive_for_username_and_email(store: Stores) -> None:
    name = unique("Alice")
    user = make_user(name)
    await store.users.add(user)
    assert await store.users.find_by_login(name.upper()) == user
    assert await store.users.find_by_login(f"{name.upper()}@EXAMPLE.com") == user
    assert await store.users.find_by_login(unique("nobody")) is None


async def test_taken_usernames_and_emails_conflict_and_the_store_stays_usable(store: Stores) -> None:
    name = unique("Bob")
    await store.users.add(make_user(name))
    with pytest.raises(Conflict):
        await store.users.add(make_user(name.upper(), email=f"{unique()}@example.com"))
    with pytest.raises(Conflict):
        await store.users.add(make_user(unique(), email=f"{name.lower()}@example.com"))
    survivor = make_user()
    await store.users.add(survivor)
    assert await store.users.get(survivor.id) == survivor


async def test_emails_that_differ_only_in_accents_are_different_users(store: Stores) -> None:
    tag = unique("")
    plain, sharp = make_user(email=f"strasse{tag}@example.com"), make_user(email=f"straße{tag}@example.com")
    await store.users.add(plain)
    await store.users.add(sharp)
    assert await store.users.find_by_login(f"straße{tag}@example.com") == sharp
    assert await store.users.find_by_login(f"strasse{tag}@example.com") == plain


@pytest.mark.req("SRS-046")
async def test_search_filters_pages_and_escapes_like_patterns(store: Stores) -> None:
    prefix = unique("s")
    made = [
        make_user(f"{prefix}_{n}", created_at=T0 + timedelta(seconds=n), role=Role.ADMIN if n == 2 else Role.USER)
        for n in range(5)
    ]
    made.append(make_user(f"{prefix}x9", status=Status.SUSPENDED, created_at=T0 + timedelta(seconds=9)))
    for user in reversed(made):
        await store.users.add(user)

    items, total = await store.users.search(UserQuery(per_page=100, prefix=prefix))
    assert (total, [user.id for user in items]) == (6, [user.id for user in made])
    page, total = await store.users.search(UserQuery(page=2, per_page=2, prefix=prefix))
    assert (total, [user.id for user in page]) == (6, [made[2].id, made[3].id])
    admins, total = await store.users.search(UserQuery(role=Role.ADMIN, prefix=prefix))
    assert (total, [user.id for user in admins]) == (1, [made[2].id])
    suspended, total = await store.users.search(UserQuery(status=Status.SUSPENDED, prefix=prefix))
    assert (total, [user.id for user in suspended]) == (1, [made[5].id])
    underscored, total = await store.users.search(UserQuery(prefix=f"{prefix}_"))  # "_" is literal, not a wildcard
    assert (total, [user.id for user in underscored]) == (5, [user.id for user in made[:5]])
    by_email, total = await store.users.search(UserQuery(prefix=f"{prefix}_1@"))
    assert (total, [user.id for user in by_email]) == (1, [made[1].id])
    assert await store.users.search(UserQuery(prefix=f"{prefix}%")) == ([], 0)


@pytest.mark.req("SRS-151")
async def test_search_can_leave_one_role_out(store: Stores) -> None:
    prefix = unique("x")
    made = [
        make_user(f"{prefix}_{n}", created_at=T0 + timedelta(seconds=n), role=role)
        for n, role in enumerate((Role.USER, Role.ADMIN, Role.GUEST, Role.ADMIN))
    ]
    for user in made:
        await store.users.add(user)
    items, total = await store.users.search(UserQuery(per_page=100, prefix=prefix, exclude_role=Role.ADMIN))
    assert (total, [user.id for user in items]) == (2, [made[0].id, made[2].id])
    page, total = await store.users.search(UserQuery(page=2, per_page=1, prefix=prefix, exclude_role=Role.ADMIN))
    assert (total, [user.id for user in page]) == (2, [made[2].id])


@pytest.mark.req("SRS-049")
async def test_update_writes_only_the_given_fields_and_returns_the_result(store: Stores) -> None:
    user = make_user(first_name="Ann", phone="+100")
    await store.users.add(user)
    after = await store.users.update(user.id, UserChanges(last_name="Lee", role=Role.GUEST), LATER)
    assert after is not None
    assert (after.first_name, after.last_name, after.phone, after.role) == ("Ann", "Lee", "+100", Role.GUEST)
    assert (after.updated_at, after.created_at) == (LATER, T0)
    assert await store.users.get(user.id) == after
    assert await store.users.update("00000000-0000-4000-8000-000000000000", UserChanges(last_name="x"), LATER) is None


async def test_update_to_a_taken_email_conflicts_and_changes_nothing(store: Stores) -> None:
    first, second = make_user(), make_user()
    await store.users.add(first)
    await store.users.add(second)
    with pytest.raises(Conflict):
        await store.users.update(second.id, UserChanges(email=first.email, first_name="Changed"), LATER)
    assert await store.users.get(second.id) == second


@pytest.mark.req("SRS-049")
async def test_suspension_ends_every_session_in_the_same_write_and_a_role_change_none(store: Stores) -> None:
    user = make_user()
    await store.users.add(user)
    sessions = [make_session(user), make_session(user)]
    for session in sessions:
        assert await store.sessions.open(session, digest())
    await store.users.update(user.id, UserChanges(role=Role.GUEST), LATER)
    assert len(await store.sessions.list_for_user(user.id)) == 2
    await store.users.update(user.id, UserChanges(status=Status.SUSPENDED), LATER)
    assert await store.sessions.list_for_user(user.id) == []
    for session in sessions:
        state = await store.sessions.state(session.id, user.id)
        assert state is not None
        assert (state.session.revoked_at, state.status) == (LATER, Status.SUSPENDED)


@pytest.mark.req("SRS-048")
async def test_a_password_change_is_guarded_and_ends_the_other_sessions(store: Stores) -> None:
    user = make_user(password_hash="old-hash")
    await store.users.add(user)
    kept, ended = make_session(user), make_session(user)
    for session in (kept, ended):
        await store.sessions.open(session, digest())
    stale = PasswordChange(user.id, expected_hash="not-the-stored-hash", new_hash="x", now=LATER, keep_session=kept.id)
    assert not await store.users.change_password(stale)
    assert await store.users.get(user.id) == user
    assert len(await store.sessions.list_for_user(user.id)) == 2

    change = PasswordChange(user.id, expected_hash="old-hash", new_hash="new-hash", now=LATER, keep_session=kept.id)
    assert await store.users.change_password(change)
    stored = await store.users.get(user.id)
    assert stored is not None
    assert (stored.password_hash, stored.updated_at) == ("new-hash", LATER)
    assert [session.id for session in await store.sessions.list_for_user(user.id)] == [kept.id]
    assert not await store.users.change_password(change)  # the old hash is gone: a replay changes nothing


@pytest.mark.req("SRS-047")
async def test_delete_removes_the_user_and_their_sessions(store: Stores) -> None:
    user = make_user()
    await store.users.add(user)
    session = make_session(user)
    await store.sessions.open(session, digest())
    assert await store.users.delete(user.id, LATER)
    assert await store.users.get(user.id) is None
    assert await store.sessions.state(session.id, user.id) is None
    assert not await store.users.delete(user.id, LATER)


@pytest.mark.req("SRS-171")
async def test_the_last_active_admin_cannot_be_demoted_suspended_or_deleted(fresh_store: Stores) -> None:
    store = fresh_store
    first, second = make_user(role=Role.ADMIN), make_user(role=Role.ADMIN)
    await store.users.add(first)
    await store.users.add(second)
    assert await store.users.update(second.id, UserChanges(role=Role.USER), LATER) is not None
    for change in (
        UserChanges(role=Role.GUEST),
        UserChanges(status=Status.SUSPENDED),
        UserChanges(status=Status.INACTIVE),
    ):
        with pytest.raises(Conflict):
            await store.users.update(first.id, change, LATER)
    with pytest.raises(Conflict):
        await store.users.delete(first.id, LATER)
    assert await store.users.get(first.id) == first  # nothing changed
    assert await store.users.update(first.id, UserChanges(role=Role.ADMIN, last_name="Kept"), LATER) is not None
    assert await store.users.update(second.id, UserChanges(status=Status.SUSPENDED), LATER) is not None


@pytest.mark.req("SRS-171")
async def test_two_admins_demoting_each_other_at_once_leave_one(fresh_store: Stores) -> None:
    store = fresh_store
    admins = [make_user(role=Role.ADMIN) for _ in range(2)]
    for admin in admins:
        await store.users.add(admin)
    outcomes = await asyncio.gather(
        *(store.users.update(admin.id, UserChanges(role=Role.USER), LATER) for admin in admins), return_exceptions=True
    )
    refused = [admin.id for admin, outcome in zip(admins, outcomes, strict=True) if isinstance(outcome, Conflict)]
    remaining = [admin.id for admin in admins if (user := await store.users.get(admin.id)) and user.role is Role.ADMIN]
    assert len(refused) == 1, outcomes  # whichever came second was refused ...
    assert remaining == refused  # ... and is the one admin left


@pytest.mark.req("SRS-172")
async def test_usernames_match_ascii_case_insensitively_and_nothing_more(store: Stores) -> None:
    tag = unique("")
    alice = make_user(f"Alice{tag}")
    await store.users.add(alice)
    assert await store.users.find_by_login(f"ALICE{tag}") == alice
    assert await store.users.find_by_login(f"alice{tag}") == alice
    fullwidth = "".join(chr(ord(char) + 0xFEE0) for char in f"ALICE{tag}")  # U+FF21 ... : looks the same
    for confusable in (f"ålice{tag}", f"Alicé{tag}", fullwidth, f"alice{tag} ", f"ali\u200bce{tag}"):
        assert await store.users.find_by_login(confusable) is None, confusable
    with pytest.raises(Conflict):
        await store.users.add(make_user(f"aLiCe{tag}"))
    found, total = await store.users.search(UserQuery(prefix=f"ålice{tag}"))
    assert (found, total) == ([], 0)


@pytest.mark.req("SRS-262")
async def test_credentials_are_the_stored_record_with_its_hash_as_it_is_now(store: Stores) -> None:
    user = make_user(password_hash="$argon2id$before")
    await store.users.add(user)
    assert await store.users.credentials(user.id) == user
    change = PasswordChange(user_id=user.id, expected_hash="$argon2id$before", new_hash="$argon2id$after", now=LATER)
    assert await store.users.change_password(change)
    after = await store.users.credentials(user.id)
    assert after is not None
    assert after.password_hash == "$argon2id$after"
    assert await store.users.credentials("00000000-0000-4000-8000-000000000000") is None
