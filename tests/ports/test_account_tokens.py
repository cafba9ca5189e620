"""The AccountTokenStore port (password reset, email verification): the same from fake, SQLite and MariaDB."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from py_app.audit.models import AuditQuery
from py_app.auth.models import AccountToken, TokenPurpose
from py_app.core.effects import AuditEvent, audited
from py_app.users.models import PasswordChange, UserChanges
from tests.ports.conftest import T0, Stores, digest, make_session, make_user

pytestmark = pytest.mark.req("SRS-082")
RESET, VERIFY = TokenPurpose.PASSWORD_RESET, TokenPurpose.EMAIL_VERIFY


def token_for(user_id: str, email: str, purpose: TokenPurpose, *, at: timedelta = timedelta()) -> AccountToken:
    return AccountToken(
        id=str(uuid.uuid4()),
        digest=digest(),
        purpose=purpose,
        user_id=user_id,
        email=email,
        created_at=T0 + at,
        expires_at=T0 + at + timedelta(minutes=30),
    )


@pytest.mark.req("SRS-100")
async def test_a_reset_is_single_use_sets_the_hash_and_ends_every_session(store: Stores) -> None:
    user = make_user(password_hash="old")
    await store.users.add(user)
    for _ in range(2):
        await store.sessions.open(make_session(user), digest())
    token = token_for(user.id, user.email, RESET)
    await store.tokens.issue(token)
    assert await store.tokens.find(token.digest, RESET, T0) == token
    assert await store.tokens.find(token.digest, VERIFY, T0) is None  # one purpose per token
    now = T0 + timedelta(minutes=1)
    assert await store.tokens.reset_password(token.digest, "new", now)
    stored = await store.users.get(user.id)
    assert stored is not None
    assert stored.password_hash == "new"
    assert await store.sessions.list_for_user(user.id) == []
    assert not await store.tokens.reset_password(token.digest, "again", now)  # spent
    assert await store.tokens.find(token.digest, RESET, now) is None


@pytest.mark.req("SRS-100")
async def test_a_reset_token_dies_with_a_newer_one_a_password_change_or_its_expiry(store: Stores) -> None:
    user = make_user(password_hash="h0")
    await store.users.add(user)
    older, newer = token_for(user.id, user.email, RESET), token_for(user.id, user.email, RESET, at=timedelta(seconds=1))
    await store.tokens.issue(older)
    await store.tokens.issue(newer)
    assert not await store.tokens.reset_password(older.digest, "x", T0 + timedelta(seconds=2))
    await store.users.change_password(PasswordChange(user.id, "h0", "h1", T0 + timedelta(seconds=3)))
    assert not await store.tokens.reset_password(newer.digest, "x", T0 + timedelta(seconds=4))
    late = token_for(user.id, user.email, RESET, at=timedelta(seconds=5))
    await store.tokens.issue(late)
    assert not await store.tokens.reset_password(late.digest, "x", late.expires_at)


@pytest.mark.req("SRS-100")
async def test_of_concurrent_resets_with_one_token_exactly_one_wins(store: Stores) -> None:
    user = make_user()
    await store.users.add(user)
    token = token_for(user.id, user.email, RESET)
    await store.tokens.issue(token)
    outcomes = await asyncio.gather(*(store.tokens.reset_password(token.digest, f"h{n}", T0) for n in range(6)))
    assert sorted(outcomes) == [False] * 5 + [True]


@pytest.mark.req("SDD-182")
async def test_tokens_issued_at_once_for_many_new_accounts_all_succeed(store: Stores) -> None:
    """Registrations at once each issue a verification token: none may fail (a MariaDB gap-lock deadlock did)."""
    accounts = [make_user() for _ in range(32)]
    for user in accounts:
        await store.users.add(user)
    for _ in range(4):
        tokens = [token_for(user.id, user.email, VERIFY) for user in accounts]
        await asyncio.gather(*(store.tokens.issue(token) for token in tokens))
        for token in tokens:  # each is the account's one live verification token
            assert await store.tokens.find(token.digest, VERIFY, T0) == token


@pytest.mark.req("SRS-101")
async def test_a_verification_marks_the_address_it_was_sent_to_and_only_that(store: Stores) -> None:
    user = make_user()
    await store.users.add(user)
    token = token_for(user.id, user.email, VERIFY)
    await store.tokens.issue(token)
    verified = await store.tokens.verify_email(token.digest, T0)
    assert verified is not None
    assert (verified.id, verified.is_verified) == (user.id, True)
    assert await store.tokens.verify_email(token.digest, T0) is None  # spent
    moved = make_user()
    await store.users.add(moved)
    stale = token_for(moved.id, moved.email, VERIFY)
    await store.tokens.issue(stale)
    await store.users.update(moved.id, UserChanges(email=f"new.{moved.email}", is_verified=False), T0)
    assert await store.tokens.verify_email(stale.digest, T0) is None
    after = await store.users.get(moved.id)
    assert after is not None
    assert not after.is_verified


@pytest.mark.req("SRS-106")
async def test_effects_are_written_with_the_change_and_only_when_it_happens(store: Stores) -> None:
    user = make_user()
    await store.users.add(user)
    token = token_for(user.id, user.email, RESET)
    issued = AuditEvent("authn_password_reset_issued", at=T0, target_id=user.id)
    await store.tokens.issue(token, audited(issued))
    reset = AuditEvent("authn_password_reset", at=T0, actor_id=user.id, target_id=user.id, ip="192.0.2.1")
    assert await store.tokens.reset_password(token.digest, "new", T0, audited(reset))
    refused = AuditEvent("authn_password_reset", at=T0, target_id=user.id, details={"second": True})
    assert not await store.tokens.reset_password(token.digest, "newer", T0, audited(refused))
    events, total = await store.audit.search(AuditQuery(user_id=user.id))
    assert total == 2
    assert {event.id for event in events} == {issued.id, reset.id}  # the refused reset recorded nothing
