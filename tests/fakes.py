"""Fakes for the ports (not mocks): small working implementations kept in memory.

The store fakes apply the same pure rules as the SQL adapters (``SessionState.usable``,
``UserChanges.values`` / ``ends_sessions``, ``SessionRules.within_grace``), and the port-contract suite
(tests/ports) runs the same tests against them and the real adapters, which is what proves them faithful.
Each method does its whole operation before its first ``await`` returns control, so it is as atomic
as the adapters' transactions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from py_app.audit.models import AuditQuery
from py_app.auth.models import (
    AccountToken,
    Rotation,
    RotationOutcome,
    Session,
    SessionRules,
    SessionState,
    TokenPurpose,
    reuse_event,
)
from py_app.auth.ports import AccessClaims
from py_app.core.effects import NO_EFFECTS, AuditEvent, Effects, OutboxMessage
from py_app.core.errors import Conflict, Unauthenticated
from py_app.users.models import (
    LAST_ADMIN,
    LoginWrite,
    PasswordChange,
    Status,
    User,
    UserChanges,
    UserQuery,
    is_active_admin,
    normalize_email,
    username_key,
)

TAKEN = "A user with this username or email already exists."


@dataclass
class FixedClock:
    current: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class PlainHasher:
    """Reversible 'hashing' for service tests: proves the service hashes and verifies, at no cost."""

    async def hash(self, password: str) -> str:
        return f"plain${password}"

    async def verify(self, encoded: str, password: str) -> bool:
        return encoded == f"plain${password}"

    def needs_rehash(self, encoded: str) -> bool:
        return False


@dataclass
class RefreshRecord:
    session_id: str
    used_at: datetime | None = None


@dataclass
class Database:
    """The rows both store fakes share, as one database holds both tables."""

    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    tokens: dict[str, RefreshRecord] = field(default_factory=dict)
    account_tokens: dict[str, AccountToken] = field(default_factory=dict)  # by digest
    outbox: list[OutboxMessage] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)

    def apply(self, effects: Effects) -> None:
        self.outbox.extend(effects.messages)
        self.audit.extend(effects.audit)

    def end_tokens(self, user_id: str, purpose: TokenPurpose, now: datetime) -> None:
        for digest, token in list(self.account_tokens.items()):
            if token.user_id == user_id and token.purpose is purpose and token.used_at is None:
                self.account_tokens[digest] = replace(token, used_at=now)

    def end_sessions(self, user_id: str, now: datetime, keep: str | None = None) -> list[str]:
        ended = [s.id for s in self.sessions.values() if s.user_id == user_id and s.revoked_at is None and s.id != keep]
        for session_id in ended:
            self.sessions[session_id] = replace(self.sessions[session_id], revoked_at=now)
        return ended

    def keep_an_admin(self, user_id: str) -> None:
        if [user.id for user in self.users.values() if is_active_admin(user)] == [user_id]:
            raise Conflict(LAST_ADMIN)

    def state(self, session_id: str) -> SessionState | None:
        session = self.sessions.get(session_id)
        user = self.users.get(session.user_id) if session else None
        return (
            None if session is None or user is None else SessionState(session, user.role, user.status, user.is_verified)
        )


class InMemoryUserStore:
    def __init__(self, db: Database | None = None) -> None:
        self.db = db or Database()

    async def add(self, user: User, effects: Effects = NO_EFFECTS) -> None:
        for existing in self.db.users.values():
            if existing.username.lower() == user.username.lower() or existing.email == user.email:
                raise Conflict(TAKEN)
        self.db.users[user.id] = user
        self.db.apply(effects)

    async def get(self, user_id: str) -> User | None:
        return self.db.users.get(user_id)

    async def credentials(self, user_id: str) -> User | None:
        return self.db.users.get(user_id)

    async def find_by_login(self, username_or_email: str) -> User | None:
        if "@" in username_or_email:
            return next((u for u in self.db.users.values() if u.email == normalize_email(username_or_email)), None)
        key = username_key(username_or_email)
        return next((u for u in self.db.users.values() if key and u.username.lower() == key), None)

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        prefix = (query.prefix or "").lower()
        found = sorted(
            (
                user
                for user in self.db.users.values()
                if (query.role is None or user.role is query.role)
                and (query.status is None or user.status is query.status)
                and user.role is not query.exclude_role
                and ((prefix.isascii() and user.username.lower().startswith(prefix)) or user.email.startswith(prefix))
            ),
            key=lambda user: (user.created_at, user.id),
        )
        return found[query.offset : query.offset + query.per_page], len(found)

    async def update(
        self, user_id: str, changes: UserChanges, now: datetime, effects: Effects = NO_EFFECTS
    ) -> User | None:
        user = self.db.users.get(user_id)
        if user is None:
            return None
        if changes.may_remove_an_admin:
            self.db.keep_an_admin(user_id)
        if changes.email is not None and any(
            other.id != user_id and other.email == changes.email for other in self.db.users.values()
        ):
            raise Conflict(TAKEN)
        self.db.users[user_id] = after = replace(user, **changes.values(), updated_at=now)  # type: ignore[arg-type]
        if changes.ends_sessions:
            self.db.end_sessions(user_id, now)
        self.db.apply(effects)
        return after

    async def change_password(self, change: PasswordChange, effects: Effects = NO_EFFECTS) -> bool:
        user = self.db.users.get(change.user_id)
        if user is None or user.password_hash != change.expected_hash:
            return False
        self.db.users[user.id] = replace(user, password_hash=change.new_hash, updated_at=change.now)
        self.db.end_sessions(user.id, change.now, keep=change.keep_session)
        self.db.end_tokens(user.id, TokenPurpose.PASSWORD_RESET, change.now)
        self.db.apply(effects)
        return True

    async def delete(self, user_id: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        self.db.keep_an_admin(user_id)
        if self.db.users.pop(user_id, None) is None:
            return False
        self.db.apply(effects)
        self.db.account_tokens = {d: t for d, t in self.db.account_tokens.items() if t.user_id != user_id}
        for session_id in [s.id for s in self.db.sessions.values() if s.user_id == user_id]:
            del self.db.sessions[session_id]  # ON DELETE CASCADE
        self.db.tokens = {d: r for d, r in self.db.tokens.items() if r.session_id in self.db.sessions}
        return True


class InMemorySessionStore:
    def __init__(self, db: Database | None = None) -> None:
        self.db = db or Database()

    async def open(
        self, session: Session, refresh_digest: str, login: LoginWrite | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        if login is not None:
            user = self.db.users.get(login.user_id)
            if user is None or user.password_hash != login.verified_hash or user.status is not Status.ACTIVE:
                return False
            self.db.users[user.id] = replace(
                user, last_login_at=login.now, password_hash=login.new_hash or user.password_hash
            )
        if session.user_id not in self.db.users:  # the foreign key
            return False
        self.db.sessions[session.id] = session
        self.db.tokens[refresh_digest] = RefreshRecord(session.id)
        self.db.apply(effects)
        return True

    async def rotate(
        self, digest: str, child_digest: str, now: datetime, rules: SessionRules, ip: str = ""
    ) -> Rotation:
        record = self.db.tokens.get(digest)
        state = self.db.state(record.session_id) if record else None
        if record is None or state is None:
            return Rotation(RotationOutcome.INVALID)
        user = self.db.users[state.session.user_id]
        if record.used_at is None:
            if not state.usable(now, rules):
                return Rotation(RotationOutcome.INVALID)
            record.used_at = now
            self.db.tokens[child_digest] = RefreshRecord(state.session.id)
            self.db.sessions[state.session.id] = touched = replace(state.session, last_used_at=now)
            return Rotation(RotationOutcome.ROTATED, touched, user)
        child = self.db.tokens.get(child_digest)
        if rules.within_grace(record.used_at, now) and child is not None and child.used_at is None:
            if not state.usable(now, rules):
                return Rotation(RotationOutcome.INVALID)
            return Rotation(RotationOutcome.REPLAYED, state.session, user)
        if state.session.revoked_at is None:
            self.db.sessions[state.session.id] = replace(state.session, revoked_at=now)
        self.db.audit.append(reuse_event(state.session, now, ip))
        return Rotation(RotationOutcome.REUSED, state.session)

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        state = self.db.state(session_id)
        return state if state is not None and state.session.user_id == user_id else None

    async def family(self, digest: str) -> str | None:
        record = self.db.tokens.get(digest)
        return record.session_id if record else None

    async def list_for_user(self, user_id: str) -> list[Session]:
        found = [s for s in self.db.sessions.values() if s.user_id == user_id and s.revoked_at is None]
        return sorted(found, key=lambda s: (-s.created_at.timestamp(), s.id))

    async def revoke(
        self, session_id: str, now: datetime, user_id: str | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        session = self.db.sessions.get(session_id)
        if session is None or session.revoked_at is not None or user_id not in (None, session.user_id):
            return False
        self.db.sessions[session_id] = replace(session, revoked_at=now)
        self.db.apply(effects)
        return True

    async def revoke_for_user(
        self, user_id: str, now: datetime, keep: str | None = None, effects: Effects = NO_EFFECTS
    ) -> list[str]:
        ended = self.db.end_sessions(user_id, now, keep)
        if ended:
            self.db.apply(effects)
        return ended


class InMemoryAccountTokens:
    def __init__(self, db: Database | None = None) -> None:
        self.db = db or Database()

    async def issue(self, token: AccountToken, effects: Effects = NO_EFFECTS) -> None:
        self.db.end_tokens(token.user_id, token.purpose, token.created_at)
        self.db.account_tokens[token.digest] = token
        self.db.apply(effects)

    async def find(self, digest: str, purpose: TokenPurpose, now: datetime) -> AccountToken | None:
        token = self.db.account_tokens.get(digest)
        usable = token is not None and token.purpose is purpose and token.used_at is None and token.expires_at > now
        return token if usable else None

    async def reset_password(self, digest: str, new_hash: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        token = await self.find(digest, TokenPurpose.PASSWORD_RESET, now)
        user = self.db.users.get(token.user_id) if token else None
        if token is None or user is None:
            return False
        self.db.account_tokens[digest] = replace(token, used_at=now)
        self.db.users[user.id] = replace(user, password_hash=new_hash, updated_at=now)
        self.db.end_sessions(user.id, now)
        self.db.end_tokens(user.id, TokenPurpose.PASSWORD_RESET, now)
        self.db.apply(effects)
        return True

    async def verify_email(self, digest: str, now: datetime, effects: Effects = NO_EFFECTS) -> User | None:
        token = await self.find(digest, TokenPurpose.EMAIL_VERIFY, now)
        user = self.db.users.get(token.user_id) if token else None
        if token is None or user is None or user.email != token.email:
            return None
        self.db.account_tokens[digest] = replace(token, used_at=now)
        self.db.users[user.id] = verified = replace(user, is_verified=True, updated_at=now)
        self.db.apply(effects)
        return verified


class InMemoryAudit:
    def __init__(self, db: Database | None = None) -> None:
        self.db = db or Database()

    async def record(self, *events: AuditEvent) -> None:
        self.db.audit.extend(events)

    async def search(self, query: AuditQuery) -> tuple[list[AuditEvent], int]:
        found = sorted(
            (
                event
                for event in self.db.audit
                if (query.user_id is None or query.user_id in (event.actor_id, event.target_id))
                and (query.event is None or event.event == query.event)
                and (query.since is None or event.at >= query.since)
            ),
            key=lambda event: (event.event, event.id),
        )
        found.sort(key=lambda event: event.at, reverse=True)  # stable: same-instant records keep (event, id)
        return found[query.offset : query.offset + query.per_page], len(found)

    async def prune(self, before: datetime) -> int:
        kept = [event for event in self.db.audit if event.at >= before]
        pruned, self.db.audit[:] = len(self.db.audit) - len(kept), kept
        return pruned


class InMemoryOutbox:
    def __init__(self, db: Database | None = None) -> None:
        self.db = db or Database()

    async def publish(self, *messages: OutboxMessage, now: datetime) -> None:
        self.db.outbox.extend(messages)


def stores() -> tuple[InMemoryUserStore, InMemorySessionStore]:
    """A user store and a session store over one in-memory database."""
    db = Database()
    return InMemoryUserStore(db), InMemorySessionStore(db)


class FakeTokens:
    """Readable 'tokens' that carry their claims, with a real expiry check."""

    ttl = 900

    def issue(self, *, user_id: str, session_id: str, role: str, now: datetime) -> str:
        return f"{user_id}|{session_id}|{role}|{int(now.timestamp()) + self.ttl}"

    def verify(self, token: str, now: datetime) -> AccessClaims:
        try:
            user_id, session_id, role, exp = token.split("|")
        except ValueError:
            raise Unauthenticated("bad token") from None
        if now.timestamp() >= int(exp):
            raise Unauthenticated("expired")
        return AccessClaims(user_id, session_id, role, "jti", int(exp))


class RecordingMetrics:
    """The metrics port as a tally of what was recorded: ``counts[("login", "success")] == 1``."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[object, ...]] = Counter()
        self.timings: list[tuple[str, float]] = []

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.counts["http", method, route, status] += 1

    def rpc_call(self, service: str, method: str, code: str, seconds: float) -> None:
        self.counts["rpc", service, method, code] += 1

    def login(self, result: str) -> None:
        self.counts["login", result] += 1

    def lockout(self) -> None:
        self.counts["lockout",] += 1

    def token_issued(self, grant: str) -> None:
        self.counts["issued", grant] += 1

    def refresh(self, result: str) -> None:
        self.counts["refresh", result] += 1

    def refresh_reuse(self) -> None:
        self.counts["reuse",] += 1

    def token_verification(self, result: str, transport: str) -> None:
        self.counts["verified", result, transport] += 1

    def rate_limited(self, policy: str) -> None:
        self.counts["limited", policy] += 1

    def password_hash(self, operation: str, seconds: float) -> None:
        self.timings.append((operation, seconds))

    def cache_lookup(self, cache: str, hit: bool) -> None:
        self.counts["cache", cache, "hit" if hit else "miss"] += 1

    def pool_checked_out(self, delta: int) -> None:
        self.counts["pool_checked_out",] += delta

    def pool_size(self, size: int) -> None:
        self.counts["pool_size",] = size

    def counters_fallback(self, degraded: bool) -> None:
        self.counts["fallback", degraded] += 1
