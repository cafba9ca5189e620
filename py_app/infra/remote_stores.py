"""gRPC-client adapters of the store ports: what the service tier of the layered mode uses in place of the
SQL stores, each calling the repository tier (``infra.remote``). Same Protocols, same errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from py_app.audit.models import AuditQuery
from py_app.audit.ports import AuditStore
from py_app.auth.models import AccountChange, AccountToken, Rotation, Session, SessionRules, SessionState, TokenPurpose
from py_app.auth.ports import AccountReplica, AccountTokenStore, SessionStore
from py_app.core.effects import NO_EFFECTS, AuditEvent, Effects, OutboxMessage
from py_app.infra.counters import CounterStore
from py_app.infra.outbox import Claimed, OutboxStore
from py_app.infra.remote import RemotePort
from py_app.users.models import LoginWrite, PasswordChange, User, UserChanges, UserQuery
from py_app.users.ports import AccountWrites, UserStore


class RemoteUserStore(RemotePort):
    protocol = UserStore
    reads = frozenset({"get", "credentials", "find_by_login", "search"})

    async def add(self, user: User, effects: Effects = NO_EFFECTS) -> None:
        await self._call("add", user, effects)

    async def get(self, user_id: str) -> User | None:
        return cast("User | None", await self._call("get", user_id))

    async def credentials(self, user_id: str) -> User | None:
        return cast("User | None", await self._call("credentials", user_id))

    async def find_by_login(self, username_or_email: str) -> User | None:
        return cast("User | None", await self._call("find_by_login", username_or_email))

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        return cast("tuple[list[User], int]", await self._call("search", query))

    async def update(
        self, user_id: str, changes: UserChanges, now: datetime, effects: Effects = NO_EFFECTS
    ) -> User | None:
        return cast("User | None", await self._call("update", user_id, changes, now, effects))

    async def change_password(self, change: PasswordChange, effects: Effects = NO_EFFECTS) -> bool:
        return cast(bool, await self._call("change_password", change, effects))

    async def delete(self, user_id: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        return cast(bool, await self._call("delete", user_id, now, effects))


class RemoteSessionStore(RemotePort):
    protocol = SessionStore
    reads = frozenset({"state", "family", "list_for_user"})

    async def open(
        self, session: Session, refresh_digest: str, login: LoginWrite | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        return cast(bool, await self._call("open", session, refresh_digest, login, effects))

    async def rotate(
        self, digest: str, child_digest: str, now: datetime, rules: SessionRules, ip: str = ""
    ) -> Rotation:
        return cast(Rotation, await self._call("rotate", digest, child_digest, now, rules, ip))

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        return cast("SessionState | None", await self._call("state", session_id, user_id))

    async def family(self, digest: str) -> str | None:
        return cast("str | None", await self._call("family", digest))

    async def list_for_user(self, user_id: str) -> list[Session]:
        return cast("list[Session]", await self._call("list_for_user", user_id))

    async def revoke(
        self, session_id: str, now: datetime, user_id: str | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        return cast(bool, await self._call("revoke", session_id, now, user_id, effects))

    async def revoke_for_user(
        self, user_id: str, now: datetime, keep: str | None = None, effects: Effects = NO_EFFECTS
    ) -> list[str]:
        return cast("list[str]", await self._call("revoke_for_user", user_id, now, keep, effects))


class RemoteAccountTokenStore(RemotePort):
    protocol = AccountTokenStore
    reads = frozenset({"find"})

    async def issue(self, token: AccountToken, effects: Effects = NO_EFFECTS) -> None:
        await self._call("issue", token, effects)

    async def find(self, digest: str, purpose: TokenPurpose, now: datetime) -> AccountToken | None:
        return cast("AccountToken | None", await self._call("find", digest, purpose, now))

    async def reset_password(self, digest: str, new_hash: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        return cast(bool, await self._call("reset_password", digest, new_hash, now, effects))

    async def verify_email(self, digest: str, now: datetime, effects: Effects = NO_EFFECTS) -> User | None:
        return cast("User | None", await self._call("verify_email", digest, now, effects))


class RemoteAuditStore(RemotePort):
    protocol = AuditStore
    reads = frozenset({"search"})

    async def record(self, *events: AuditEvent) -> None:
        await self._call("record", *events)

    async def search(self, query: AuditQuery) -> tuple[list[AuditEvent], int]:
        return cast("tuple[list[AuditEvent], int]", await self._call("search", query))

    async def prune(self, before: datetime) -> int:
        return cast(int, await self._call("prune", before))


class RemoteOutbox(RemotePort):
    protocol = OutboxStore
    reads = frozenset({"waiting"})

    async def publish(self, *messages: OutboxMessage, now: datetime) -> None:
        await self._call("publish", *messages, now=now)

    async def claim(
        self, claim: str, now: datetime, lease: timedelta, limit: int, topics: frozenset[str] | None = None
    ) -> list[Claimed]:
        return cast("list[Claimed]", await self._call("claim", claim, now, lease, limit, topics))

    async def done(self, message_id: str, claim: str, now: datetime) -> None:
        await self._call("done", message_id, claim, now)

    async def failed(self, message: Claimed, claim: str, now: datetime, error: str) -> bool:
        return cast(bool, await self._call("failed", message, claim, now, error))

    async def waiting(self, topic: str) -> int:
        return cast(int, await self._call("waiting", topic))

    async def prune(self, before: datetime) -> int:
        return cast(int, await self._call("prune", before))


class RemoteCounters(RemotePort):
    protocol = CounterStore
    reads = frozenset({"held"})

    async def hit(self, key: str, window: int, now: datetime) -> tuple[int, int]:
        return cast("tuple[int, int]", await self._call("hit", key, window, now))

    async def release(self, key: str) -> None:
        await self._call("release", key)

    async def reset(self, key: str) -> None:
        await self._call("reset", key)

    async def hold(self, key: str, seconds: int, now: datetime) -> None:
        await self._call("hold", key, seconds, now)

    async def held(self, key: str, now: datetime) -> int:
        return cast(int, await self._call("held", key, now))

    async def prune(self, now: datetime) -> int:
        return cast(int, await self._call("prune", now))


class RemoteAccountWrites(RemotePort):
    """The auth service's client of the users service's account writes (microservices mode)."""

    protocol = AccountWrites

    async def record_login(self, login: LoginWrite) -> bool:
        return cast(bool, await self._call("record_login", login))

    async def set_password(self, user_id: str, new_hash: str, now: datetime) -> bool:
        return cast(bool, await self._call("set_password", user_id, new_hash, now))

    async def mark_verified(self, user_id: str, email: str, now: datetime) -> User | None:
        return cast("User | None", await self._call("mark_verified", user_id, email, now))


class RemoteAccountReplica(RemotePort):
    """The users service's client of the auth service's replica of the accounts (microservices mode)."""

    protocol = AccountReplica

    async def apply(self, change: AccountChange, user: User | None) -> None:
        await self._call("apply", change, user)
