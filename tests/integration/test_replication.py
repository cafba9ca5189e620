"""The microservices mode's propagation on two real SQLite databases (the users service's and the auth service's),
in one process: the composed adapters of infra/replication.py with the replica called in-process.

(The same across real processes and gRPC: tests/e2e/test_microservices.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.audit.repositories import SqlAuditStore
from py_app.auth.models import AccountChange
from py_app.auth.repositories import SqlAccountTokenStore, SqlSessionStore
from py_app.core.effects import AuditEvent, audited
from py_app.core.errors import Unavailable
from py_app.infra import migrations
from py_app.infra.cache import NoSessionCache
from py_app.infra.db import create_engine
from py_app.infra.outbox import SqlOutbox
from py_app.infra.relay import OutboxRelay
from py_app.infra.replication import (
    ACCOUNT_CHANGED,
    RELAY_AFTER_SECONDS,
    SETTLE,
    ReplicaSessionStore,
    ReplicatedUserStore,
    SqlAccountReplica,
)
from py_app.users.models import LoginWrite, PasswordChange, Status, User, UserChanges
from py_app.users.repositories import SqlAccountWrites, SqlUserStore
from tests.fakes import FixedClock
from tests.ports.conftest import T0, digest, make_session, make_user

pytestmark = pytest.mark.req("SDD-221")


class Forgetting(NoSessionCache):
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    async def forget_user(self, user_id: str) -> None:
        self.forgotten.append(user_id)


class Switchable:
    """The replica, reachable or not (the auth service up or down)."""

    def __init__(self, replica: SqlAccountReplica) -> None:
        self.replica = replica
        self.down = False

    async def apply(self, change: AccountChange, user: User | None) -> None:
        if self.down:
            raise Unavailable("a service behind this one is unavailable")
        await self.replica.apply(change, user)


@dataclass
class Pair:
    users: AsyncEngine
    auth: AsyncEngine
    store: ReplicatedUserStore
    replica: Switchable
    outbox: SqlOutbox
    cache: Forgetting
    clock: FixedClock

    async def rows(self, engine: AsyncEngine, query: str) -> list[tuple[object, ...]]:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(sa.text(query))]

    async def same_accounts(self) -> bool:
        query = "SELECT * FROM users ORDER BY id"
        return await self.rows(self.users, query) == await self.rows(self.auth, query)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    urls = [f"sqlite+aiosqlite:///{tmp_path / name}" for name in ("users.db", "auth.db")]
    for url in urls:
        await asyncio.to_thread(migrations.upgrade, url)
    users, auth = (create_engine(url) for url in urls)
    cache, clock = Forgetting(), FixedClock(T0)
    replica = Switchable(SqlAccountReplica(auth, cache))
    outbox = SqlOutbox(users)
    store = ReplicatedUserStore(SqlUserStore(users), SqlAccountWrites(users), outbox, replica, clock)
    try:
        yield Pair(users, auth, store, replica, outbox, cache, clock)
    finally:
        await users.dispose()
        await auth.dispose()


def _created(user: User) -> AuditEvent:
    return AuditEvent("user_created", at=user.created_at, actor_id=user.id, target_id=user.id)


async def test_each_write_reaches_the_replica_and_a_redelivered_or_late_change_leaves_it_as_the_source_is(
    pair: Pair,
) -> None:
    user = make_user()
    created = _created(user)
    await pair.store.add(user, audited(created))
    assert await pair.same_accounts()
    sessions = SqlSessionStore(pair.auth)
    session = make_session(user, at=T0)
    assert await sessions.open(session, digest())
    suspended = await pair.store.update(user.id, UserChanges(status=Status.SUSPENDED), T0 + timedelta(seconds=60))
    assert suspended is not None
    assert await pair.same_accounts()
    state = await sessions.state(session.id, user.id)
    assert state is not None
    assert (state.status, state.session.revoked_at is not None) == (Status.SUSPENDED, True)
    # The first change delivered again, after the second: it reads the account now, so nothing goes back.
    await pair.store.deliver(AccountChange(user_id=user.id, at=user.created_at, audit=(created,)))
    assert await pair.same_accounts()
    assert await pair.rows(pair.auth, "SELECT event FROM audit_events") == [("user_created",)]
    assert await pair.rows(pair.users, "SELECT count(*) FROM audit_events") == [(0,)]  # the log is the auth side's
    assert pair.cache.forgotten == [user.id] * 3
    assert await pair.store.delete(user.id, T0 + timedelta(seconds=120))
    assert await pair.rows(pair.auth, "SELECT count(*) FROM users") == [(0,)]
    assert await pair.rows(pair.auth, "SELECT count(*) FROM sessions") == [(0,)]  # gone with the account
    # Every message was delivered by its writer: none is left for the relay.
    assert await pair.rows(pair.users, "SELECT DISTINCT status FROM outbox") == [("done",)]


@pytest.mark.req("SDD-225")
async def test_a_password_change_ends_older_sessions_but_the_kept_one_and_spares_later_ones_on_redelivery(
    pair: Pair,
) -> None:
    user = make_user()
    await pair.store.add(user)
    sessions = SqlSessionStore(pair.auth)
    at = T0 + timedelta(minutes=10)
    kept, older, racing, later = (make_session(user, at=when) for when in (T0, T0, at + SETTLE, at + 2 * SETTLE))
    for session in (kept, older, racing):
        assert await sessions.open(session, digest())
    change = PasswordChange(user.id, user.password_hash, "$argon2id$new", at, keep_session=kept.id)
    assert await pair.store.change_password(change)
    live = {session.id for session in await sessions.list_for_user(user.id)}
    assert live == {kept.id}
    assert await sessions.open(later, digest())  # a login with the new password, after the change settled
    await pair.store.deliver(AccountChange(user_id=user.id, at=at, ends_sessions=True, ends_resets=True, keep=kept.id))
    assert {session.id for session in await sessions.list_for_user(user.id)} == {kept.id, later.id}
    assert await pair.same_accounts()


@pytest.mark.req("SDD-221", "SRS-225")
async def test_a_write_whose_delivery_fails_is_saved_answered_unavailable_and_relayed_after_its_delay(
    pair: Pair,
) -> None:
    user = make_user()
    await pair.store.add(user)
    pair.replica.down = True
    with pytest.raises(Unavailable, match="saved but not yet in effect"):
        await pair.store.update(user.id, UserChanges(first_name="Ada"), T0)
    assert await pair.rows(pair.users, "SELECT first_name FROM users") == [("Ada",)]
    assert await pair.rows(pair.auth, "SELECT first_name FROM users") == [("",)]
    pair.replica.down = False
    relay = OutboxRelay(pair.outbox, {ACCOUNT_CHANGED: pair.store.relay}, pair.clock)
    assert await relay.run_once() == 0  # not before its delay: its writer might still be delivering it
    pair.clock.advance(RELAY_AFTER_SECONDS + 1)
    assert await relay.run_once() == 1
    assert await pair.same_accounts()
    assert await pair.rows(pair.users, "SELECT DISTINCT status FROM outbox") == [("done",)]


@pytest.mark.req("SDD-223")
async def test_a_login_whose_guard_fails_at_the_users_service_ends_its_session_and_records_nothing(
    pair: Pair,
) -> None:
    user = make_user()
    await pair.store.add(user)
    audit = SqlAuditStore(pair.auth)
    sessions = ReplicaSessionStore(
        SqlSessionStore(pair.auth, records_logins=False), pair.store, audit, SqlOutbox(pair.auth)
    )
    success = audited(AuditEvent("authn_login_success", at=T0, actor_id=user.id))
    login = LoginWrite(user_id=user.id, verified_hash=user.password_hash, now=T0)
    first = make_session(user)
    assert await sessions.open(first, digest(), login, success)
    assert await pair.rows(pair.auth, "SELECT event FROM audit_events") == [("authn_login_success",)]
    assert await pair.same_accounts()  # the login recorded at the owner, and propagated back
    assert await pair.rows(pair.auth, "SELECT last_login_at IS NOT NULL FROM users") == [(1,)]
    # A password change that reached the users database but not yet the replica: the users guard catches it.
    changed = PasswordChange(user.id, user.password_hash, "$argon2id$new", T0)
    assert await SqlUserStore(pair.users).change_password(changed)
    second = make_session(user)
    assert not await sessions.open(second, digest(), login, success)
    state = await SqlSessionStore(pair.auth).state(second.id, user.id)
    assert state is not None
    assert state.session.revoked_at is not None
    assert await pair.rows(pair.auth, "SELECT count(*) FROM audit_events") == [(1,)]  # no second success


@pytest.mark.req("SDD-224")
async def test_a_verification_token_spent_for_an_address_the_account_no_longer_has_verifies_nothing(
    pair: Pair,
) -> None:
    from py_app.auth.models import AccountToken, TokenPurpose
    from py_app.infra.replication import ReplicaAccountTokenStore

    user = make_user()
    await pair.store.add(user)
    tokens = ReplicaAccountTokenStore(SqlAccountTokenStore(pair.auth), pair.store)
    token = AccountToken(
        id="t1",
        digest=digest(),
        purpose=TokenPurpose.EMAIL_VERIFY,
        user_id=user.id,
        email=user.email,
        created_at=T0,
        expires_at=T0 + timedelta(hours=1),
    )
    await tokens.issue(token)
    # The email changes at the owner but has not reached the replica (its delivery failed).
    pair.replica.down = True
    with pytest.raises(Unavailable):
        await pair.store.update(user.id, UserChanges(email="moved@example.com", is_verified=False), T0)
    pair.replica.down = False
    assert await tokens.verify_email(token.digest, T0) is None  # spent at the replica, refused at the owner
    assert await pair.rows(pair.users, "SELECT is_verified FROM users") == [(0,)]
