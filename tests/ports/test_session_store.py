"""The SessionStore port: the same behaviour from the fake, SQLite and MariaDB."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from py_app.auth.models import RotationOutcome, SessionRules
from py_app.users.models import LoginWrite, Role, Status, UserChanges
from tests.ports.conftest import T0, Stores, digest, make_session, make_user

pytestmark = pytest.mark.req("SRS-082")
RULES = SessionRules(idle_seconds=600, absolute_seconds=3600, reuse_grace_seconds=10)


async def opened(store: Stores, **user_fields: Any) -> tuple[str, str, str]:
    """A user with one open session: (user id, session id, refresh digest)."""
    user = make_user(**user_fields)
    await store.users.add(user)
    session, first = make_session(user), digest()
    assert await store.sessions.open(session, first)
    return user.id, session.id, first


@pytest.mark.req("SRS-045")
async def test_an_open_session_is_read_with_its_account_role_and_status(store: Stores) -> None:
    user_id, session_id, _ = await opened(store, role=Role.GUEST)
    state = await store.sessions.state(session_id, user_id)
    assert state is not None
    assert (state.session.id, state.session.user_id, state.session.created_at) == (session_id, user_id, T0)
    assert (state.role, state.status, state.session.revoked_at) == (Role.GUEST, Status.ACTIVE, None)
    assert await store.sessions.state(session_id, "00000000-0000-4000-8000-000000000000") is None


@pytest.mark.req("SRS-049", "SRS-053")
async def test_a_login_write_is_recorded_with_the_session_only_while_its_guard_holds(store: Stores) -> None:
    user = make_user(password_hash="verified")
    await store.users.add(user)
    now = T0 + timedelta(seconds=30)
    stale, good, suspended = make_session(user), make_session(user), make_session(user)
    assert not await store.sessions.open(stale, digest(), LoginWrite(user.id, "another-hash", now))
    assert await store.sessions.state(stale.id, user.id) is None  # nothing stored
    assert await store.sessions.open(good, digest(), LoginWrite(user.id, "verified", now, new_hash="rehashed"))
    stored = await store.users.get(user.id)
    assert stored is not None
    assert (stored.last_login_at, stored.password_hash) == (now, "rehashed")
    await store.users.update(user.id, UserChanges(status=Status.SUSPENDED), now)
    assert not await store.sessions.open(suspended, digest(), LoginWrite(user.id, "rehashed", now))
    assert await store.sessions.state(suspended.id, user.id) is None


@pytest.mark.req("SRS-045")
async def test_no_session_opens_for_an_account_deleted_meanwhile(store: Stores) -> None:
    """Registration opens its first session without a login guard: an admin's delete in between must end
    in a refused open (the service answers 401), not in a foreign-key error (a 500)."""
    user = make_user()
    await store.users.add(user)
    assert await store.users.delete(user.id, T0)
    session = make_session(user)
    assert not await store.sessions.open(session, digest())
    assert await store.sessions.state(session.id, user.id) is None


@pytest.mark.req("SRS-042")
async def test_rotation_spends_the_token_and_stores_its_child(store: Stores) -> None:
    user_id, session_id, first = await opened(store)
    now, child = T0 + timedelta(seconds=60), digest()
    rotation = await store.sessions.rotate(first, child, now, RULES)
    assert rotation.outcome is RotationOutcome.ROTATED
    assert rotation.session is not None
    assert rotation.user is not None
    assert (rotation.session.id, rotation.session.last_used_at, rotation.user.id) == (session_id, now, user_id)
    state = await store.sessions.state(session_id, user_id)
    assert state is not None
    assert state.session.last_used_at == now
    grandchild = await store.sessions.rotate(child, digest(), now + timedelta(seconds=1), RULES)
    assert grandchild.outcome is RotationOutcome.ROTATED


@pytest.mark.req("SRS-043")
async def test_a_second_presentation_within_the_grace_is_a_replay_while_the_child_is_unspent(store: Stores) -> None:
    user_id, session_id, first = await opened(store)
    now, child = T0 + timedelta(seconds=60), digest()
    await store.sessions.rotate(first, child, now, RULES)
    replay = await store.sessions.rotate(first, child, now + timedelta(seconds=5), RULES)
    assert replay.outcome is RotationOutcome.REPLAYED
    assert replay.session is not None
    assert replay.user is not None
    assert (replay.session.id, replay.user.id) == (session_id, user_id)
    state = await store.sessions.state(session_id, user_id)
    assert state is not None
    assert state.session.revoked_at is None


@pytest.mark.req("SRS-043")
async def test_a_spent_token_whose_child_was_spent_too_is_reuse_even_within_the_grace(store: Stores) -> None:
    user_id, session_id, first = await opened(store)
    now, child = T0 + timedelta(seconds=60), digest()
    await store.sessions.rotate(first, child, now, RULES)
    await store.sessions.rotate(child, digest(), now + timedelta(seconds=1), RULES)
    reuse = await store.sessions.rotate(first, child, now + timedelta(seconds=2), RULES)
    assert reuse.outcome is RotationOutcome.REUSED
    assert reuse.session is not None
    assert reuse.session.id == session_id
    state = await store.sessions.state(session_id, user_id)
    assert state is not None
    assert state.session.revoked_at == now + timedelta(seconds=2)


@pytest.mark.req("SRS-043")
async def test_a_spent_token_shown_after_the_grace_is_reuse_and_ends_the_session(store: Stores) -> None:
    user_id, session_id, first = await opened(store)
    now, child = T0 + timedelta(seconds=60), digest()
    await store.sessions.rotate(first, child, now, RULES)
    late = now + timedelta(seconds=11)
    assert (await store.sessions.rotate(first, child, late, RULES)).outcome is RotationOutcome.REUSED
    state = await store.sessions.state(session_id, user_id)
    assert state is not None
    assert state.session.revoked_at == late
    assert (await store.sessions.rotate(child, digest(), late, RULES)).outcome is RotationOutcome.INVALID


@pytest.mark.req("SRS-043")
async def test_dead_sessions_and_unknown_tokens_are_invalid_and_spend_nothing(store: Stores) -> None:
    assert (await store.sessions.rotate(digest(), digest(), T0, RULES)).outcome is RotationOutcome.INVALID
    _, _, first = await opened(store)
    idle = T0 + timedelta(seconds=601)
    for _ in range(2):  # the failed rotation did not spend the token: the second is not reuse
        assert (await store.sessions.rotate(first, digest(), idle, RULES)).outcome is RotationOutcome.INVALID
    suspended_id, _, token = await opened(store)
    await store.users.update(suspended_id, UserChanges(status=Status.SUSPENDED), T0)
    assert (await store.sessions.rotate(token, digest(), T0, RULES)).outcome is RotationOutcome.INVALID


@pytest.mark.req("SRS-043")
async def test_of_concurrent_rotations_of_one_token_exactly_one_wins(store: Stores) -> None:
    _, _, first = await opened(store)
    now, child = T0 + timedelta(seconds=60), digest()
    outcomes = await asyncio.gather(*(store.sessions.rotate(first, child, now, RULES) for _ in range(8)))
    assert sorted(rotation.outcome for rotation in outcomes) == [RotationOutcome.REPLAYED] * 7 + [
        RotationOutcome.ROTATED
    ]


@pytest.mark.req("SRS-045")
async def test_sessions_list_newest_first_and_revocation_ends_them_once(store: Stores) -> None:
    user = make_user()
    await store.users.add(user)
    made = [make_session(user, at=T0 + timedelta(seconds=n)) for n in range(3)]
    for session in made:
        await store.sessions.open(session, digest())
    assert [s.id for s in await store.sessions.list_for_user(user.id)] == [s.id for s in reversed(made)]
    later = T0 + timedelta(seconds=10)
    assert not await store.sessions.revoke(made[0].id, later, user_id="00000000-0000-4000-8000-000000000000")
    assert await store.sessions.revoke(made[0].id, later, user_id=user.id)
    assert not await store.sessions.revoke(made[0].id, later)
    assert sorted(await store.sessions.revoke_for_user(user.id, later, keep=made[2].id)) == [made[1].id]
    assert [s.id for s in await store.sessions.list_for_user(user.id)] == [made[2].id]
    assert await store.sessions.revoke_for_user(user.id, later, keep=made[2].id) == []


@pytest.mark.req("SRS-043")
async def test_with_no_grace_every_second_presentation_is_reuse_however_close(store: Stores) -> None:
    user_id, session_id, first = await opened(store)
    now, child = T0 + timedelta(seconds=60), digest()
    strict = SessionRules(idle_seconds=600, absolute_seconds=3600, reuse_grace_seconds=0)
    await store.sessions.rotate(first, child, now, strict)
    earlier = now - timedelta(microseconds=5)  # a racer whose clock was read just before the winner's spend
    assert (await store.sessions.rotate(first, child, earlier, strict)).outcome is RotationOutcome.REUSED
    state = await store.sessions.state(session_id, user_id)
    assert state is not None
    assert state.session.revoked_at == earlier
