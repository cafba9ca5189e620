"""The microservices mode's accounts: owned by the users service, replicated into the auth service's database.

Users side (``ReplicatedUserStore``, behind the same ``UserStore`` Protocol, so ``UserService`` is the
monolith's): every account write commits in the users database together with an outbox message naming the
account (``AccountChange``), then delivers it at once: it reads the account as it is now and calls the auth
service's ``AccountReplica.apply``. Reading at delivery makes a delivery idempotent and order-free, so the
relay (the users service's background job) may deliver the same message again after a failure. When the
synchronous delivery fails the write is saved but the caller is told ``Unavailable`` (503 / UNAVAILABLE):
the per-request check would not see it yet; the relay applies it later, nothing is lost.

Auth side (``SqlAccountReplica``, ``ReplicaSessionStore``, ``ReplicaAccountTokenStore``): the replica's rows
are written only by ``apply``; the account writes authentication causes (a login, a reset's new hash, a
verified email) are sent to the users service (``AccountWrites``), which writes and propagates them back.
docs/ARCHITECTURE.md "Microservices mode" gives the ordering arguments.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.audit.ports import AuditStore
from py_app.audit.tables import audit_events, audit_row
from py_app.auth.models import (
    AccountChange,
    AccountToken,
    Rotation,
    Session,
    SessionRules,
    SessionState,
    TokenPurpose,
)
from py_app.auth.ports import AccountReplica, SessionCache, SessionStore
from py_app.auth.repositories import SqlAccountTokenStore
from py_app.auth.tables import account_tokens, sessions
from py_app.core.effects import NO_EFFECTS, Effects, OutboxMessage
from py_app.core.errors import Conflict, DomainError, Unavailable
from py_app.core.ports import Clock
from py_app.infra.db import transaction
from py_app.infra.outbox import OutboxStore, SqlOutbox
from py_app.users.models import LoginWrite, PasswordChange, User, UserChanges, UserQuery
from py_app.users.ports import AccountWrites
from py_app.users.repositories import SqlAccountWrites, SqlUserStore
from py_app.users.tables import user_row, users

logger = logging.getLogger("arcana.replication")

ACCOUNT_CHANGED = "users.account_changed"
# The relay takes a change only if its writer has not delivered it by then (a failed synchronous delivery).
RELAY_AFTER_SECONDS = 10.0
# Sessions and reset tokens created up to this long after a change's time end with it: a login whose guard
# passed in the users database just before the change's write may have stamped its session a little after
# the change's clock reading, or on another machine's clock (docs/ARCHITECTURE.md, "Microservices mode").
SETTLE = timedelta(seconds=5)
NOT_YET = "The change is saved but not yet in effect; try again shortly."


def change_message(change: AccountChange) -> OutboxMessage:
    return OutboxMessage(ACCOUNT_CHANGED, msgspec.to_builtins(change), not_before=RELAY_AFTER_SECONDS)


def read_change(payload: Mapping[str, Any]) -> AccountChange:
    return msgspec.convert(payload, AccountChange)


# --- the users service ----------------------------------------------------------------------------------


class ReplicatedUserStore:
    """The users service's ``UserStore`` and ``AccountWrites``: the SQL writes, each propagated to the replica.

    The writes' audit records travel in the change (the auth service keeps the audit log), not into this
    database; other effects stay with the write.
    """

    def __init__(
        self,
        store: SqlUserStore,
        writes: SqlAccountWrites,
        outbox: SqlOutbox,
        replica: AccountReplica,
        clock: Clock,
    ) -> None:
        self._store = store
        self._writes = writes
        self._outbox = outbox
        self._replica = replica
        self._clock = clock

    async def get(self, user_id: str) -> User | None:
        return await self._store.get(user_id)

    async def credentials(self, user_id: str) -> User | None:
        return await self._store.credentials(user_id)

    async def find_by_login(self, username_or_email: str) -> User | None:
        return await self._store.find_by_login(username_or_email)

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        return await self._store.search(query)

    async def add(self, user: User, effects: Effects = NO_EFFECTS) -> None:
        change = AccountChange(user_id=user.id, at=user.created_at, audit=effects.audit)
        message = change_message(change)
        await self._store.add(user, _carried(effects, message))
        await self._propagate(change, message)

    async def update(
        self, user_id: str, changes: UserChanges, now: datetime, effects: Effects = NO_EFFECTS
    ) -> User | None:
        change = AccountChange(user_id=user_id, at=now, ends_sessions=changes.ends_sessions, audit=effects.audit)
        message = change_message(change)
        after = await self._store.update(user_id, changes, now, _carried(effects, message))
        if after is not None:
            await self._propagate(change, message)
        return after

    async def change_password(self, change: PasswordChange, effects: Effects = NO_EFFECTS) -> bool:
        changed = AccountChange(
            user_id=change.user_id,
            at=change.now,
            ends_sessions=True,
            ends_resets=True,
            keep=change.keep_session,
            audit=effects.audit,
        )
        message = change_message(changed)
        if not await self._store.change_password(change, _carried(effects, message)):
            return False
        await self._propagate(changed, message)
        return True

    async def delete(self, user_id: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        change = AccountChange(user_id=user_id, at=now, ends_sessions=True, audit=effects.audit)
        message = change_message(change)
        if not await self._store.delete(user_id, now, _carried(effects, message)):
            return False
        await self._propagate(change, message)
        return True

    async def record_login(self, login: LoginWrite) -> bool:
        change = AccountChange(user_id=login.user_id, at=login.now)
        message = change_message(change)
        if not await self._writes.record_login(login, Effects(messages=(message,))):
            return False
        await self._propagate(change, message)
        return True

    async def set_password(self, user_id: str, new_hash: str, now: datetime) -> bool:
        change = AccountChange(user_id=user_id, at=now, ends_sessions=True, ends_resets=True)
        message = change_message(change)
        if not await self._writes.set_password(user_id, new_hash, now, Effects(messages=(message,))):
            return False
        await self._propagate(change, message)
        return True

    async def mark_verified(self, user_id: str, email: str, now: datetime) -> User | None:
        change = AccountChange(user_id=user_id, at=now)
        message = change_message(change)
        after = await self._writes.mark_verified(user_id, email, now, Effects(messages=(message,)))
        if after is not None:
            await self._propagate(change, message)
        return after

    async def deliver(self, change: AccountChange) -> None:
        """Apply ``change`` to the replica with the account as it is now (the relay's handler, and the first try)."""
        await self._replica.apply(change, await self._store.get(change.user_id))

    async def relay(self, payload: Mapping[str, Any]) -> None:
        await self.deliver(read_change(payload))

    async def _propagate(self, change: AccountChange, message: OutboxMessage) -> None:
        try:
            await self.deliver(change)
        except DomainError as exc:
            logger.warning(
                "account change saved, propagation left to the relay",
                extra={"user_id": change.user_id, "error": type(exc).__name__},
            )
            raise Unavailable(NOT_YET) from exc
        with contextlib.suppress(DomainError):  # not settled: the relay delivers it once more, to no effect
            await self._outbox.settle(message.id, self._clock.now())


def _carried(effects: Effects, message: OutboxMessage) -> Effects:
    return Effects(messages=(*effects.messages, message))


# --- the auth service -----------------------------------------------------------------------------------


class SqlAccountReplica:
    """The auth service's ``users`` rows, written only here, by the users service's propagation."""

    def __init__(self, engine: AsyncEngine, cache: SessionCache) -> None:
        self._engine = engine
        self._cache = cache

    async def apply(self, change: AccountChange, user: User | None) -> None:
        until = change.at + SETTLE
        async with transaction(self._engine) as connection:
            held = sa.select(users.c.id).where(users.c.id == change.user_id).with_for_update()
            present = (await connection.execute(held)).first() is not None
            try:
                if user is None:  # its sessions and tokens go with it (CASCADE)
                    await connection.execute(users.delete().where(users.c.id == change.user_id))
                elif present:
                    await connection.execute(users.update().where(users.c.id == user.id).values(**user_row(user)))
                else:
                    await connection.execute(users.insert().values(**user_row(user)))
            except IntegrityError:
                # Another account's change that frees this username or email has not arrived yet: it will,
                # and this change is delivered again after it.
                raise Conflict("The replica cannot take this account yet.") from None
            if user is not None and change.ends_sessions:
                live = sa.and_(
                    sessions.c.user_id == change.user_id,
                    sessions.c.revoked_at.is_(None),
                    sessions.c.created_at <= until,
                )
                if change.keep is not None:
                    live = sa.and_(live, sessions.c.id != change.keep)
                await connection.execute(sessions.update().where(live).values(revoked_at=change.at))
            if user is not None and change.ends_resets:
                await connection.execute(
                    account_tokens.update()
                    .where(
                        account_tokens.c.user_id == change.user_id,
                        account_tokens.c.purpose == TokenPurpose.PASSWORD_RESET.value,
                        account_tokens.c.used_at.is_(None),
                        account_tokens.c.created_at <= until,
                    )
                    .values(used_at=change.at)
                )
            if change.audit:
                ids = [event.id for event in change.audit]
                known = set(
                    (await connection.execute(sa.select(audit_events.c.id).where(audit_events.c.id.in_(ids)))).scalars()
                )
                fresh = [audit_row(event) for event in change.audit if event.id not in known]
                if fresh:
                    await connection.execute(audit_events.insert(), fresh)
        await self._cache.forget_user(change.user_id)


class ReplicaSessionStore:
    """Sessions over the replica: a login opens its session guarded by the replica, then the users service
    records it under the same guard; when that fails the session ends and the login fails, as in the monolith.

    ``inner`` must check logins without writing them (``SqlSessionStore(records_logins=False)``). A login's
    effects (its audit record) are written only once both guards held.
    """

    def __init__(self, inner: SessionStore, accounts: AccountWrites, audit: AuditStore, outbox: OutboxStore) -> None:
        self._inner = inner
        self._accounts = accounts
        self._audit = audit
        self._outbox = outbox

    async def open(
        self, session: Session, refresh_digest: str, login: LoginWrite | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        if login is None:
            return await self._inner.open(session, refresh_digest, None, effects)
        if not await self._inner.open(session, refresh_digest, login):
            return False
        try:
            recorded = await self._accounts.record_login(login)
        except DomainError:
            await self._inner.revoke(session.id, login.now)
            raise
        if not recorded:
            await self._inner.revoke(session.id, login.now)
            return False
        if effects.audit:
            await self._audit.record(*effects.audit)
        if effects.messages:
            await self._outbox.publish(*effects.messages, now=login.now)
        return True

    async def rotate(
        self, digest: str, child_digest: str, now: datetime, rules: SessionRules, ip: str = ""
    ) -> Rotation:
        return await self._inner.rotate(digest, child_digest, now, rules, ip)

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        return await self._inner.state(session_id, user_id)

    async def family(self, digest: str) -> str | None:
        return await self._inner.family(digest)

    async def list_for_user(self, user_id: str) -> list[Session]:
        return await self._inner.list_for_user(user_id)

    async def revoke(
        self, session_id: str, now: datetime, user_id: str | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        return await self._inner.revoke(session_id, now, user_id, effects)

    async def revoke_for_user(
        self, user_id: str, now: datetime, keep: str | None = None, effects: Effects = NO_EFFECTS
    ) -> list[str]:
        return await self._inner.revoke_for_user(user_id, now, keep, effects)


class ReplicaAccountTokenStore:
    """Reset and verification tokens over the replica: the token is spent here (the compare-and-set, first),
    the account change it authorises is the users service's (``AccountWrites``), propagated back."""

    def __init__(self, store: SqlAccountTokenStore, accounts: AccountWrites) -> None:
        self._store = store
        self._accounts = accounts

    async def issue(self, token: AccountToken, effects: Effects = NO_EFFECTS) -> None:
        await self._store.issue(token, effects)

    async def find(self, digest: str, purpose: TokenPurpose, now: datetime) -> AccountToken | None:
        return await self._store.find(digest, purpose, now)

    async def reset_password(self, digest: str, new_hash: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        user_id = await self._store.spend_reset(digest, now, effects)
        return user_id is not None and await self._accounts.set_password(user_id, new_hash, now)

    async def verify_email(self, digest: str, now: datetime, effects: Effects = NO_EFFECTS) -> User | None:
        spent = await self._store.spend_verification(digest, now, effects)
        if spent is None:
            return None
        user_id, email = spent
        return await self._accounts.mark_verified(user_id, email, now)
