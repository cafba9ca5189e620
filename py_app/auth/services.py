"""Authentication use cases: register, login, refresh rotation, logout, sessions, request authentication."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from py_app.auth.models import AuthResult, ClientInfo, Session, TokenPair, new_refresh_token, token_digest
from py_app.auth.ports import AccessTokens, AuthUnitOfWorkFactory, SessionCache
from py_app.core.errors import NotFound, Unauthenticated
from py_app.core.identity import Principal
from py_app.core.ports import Clock, PasswordHasher
from py_app.users.models import Role, Status, User
from py_app.users.services import NewUser, UserService

security_log = logging.getLogger("arcana.security")

BAD_CREDENTIALS = "Invalid username, email or password."
BAD_REFRESH = "The refresh token is invalid, expired or already used."
BAD_SESSION = "The session has ended; log in again."


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Refresh-token lifetimes (REFERENCE: idle 7 d, absolute 30 d) and the concurrent-refresh grace."""

    idle_seconds: int = 7 * 24 * 3600
    absolute_seconds: int = 30 * 24 * 3600
    reuse_grace_seconds: int = 10


class AuthService:
    """Accounts' ways in and out. Hashing always happens outside database transactions."""

    def __init__(
        self,
        uow: AuthUnitOfWorkFactory,
        users: UserService,
        hasher: PasswordHasher,
        tokens: AccessTokens,
        cache: SessionCache,
        clock: Clock,
        policy: SessionPolicy,
    ) -> None:
        self._uow = uow
        self._users = users
        self._hasher = hasher
        self._tokens = tokens
        self._cache = cache
        self._clock = clock
        self._policy = policy
        self._dummy_hash: str | None = None

    async def prepare(self) -> None:
        """Make the dummy hash before serving, so the first unknown-user login costs what later ones do."""
        await self._dummy()

    async def register(self, new: NewUser, client: ClientInfo) -> AuthResult:
        """Create an account (role user) and open its first session."""
        user = await self._users.create(replace(new, role=Role.USER.value, is_verified=False))
        return AuthResult(user, await self._open_session(user, client))

    async def login(self, username_or_email: str, password: str, client: ClientInfo) -> AuthResult:
        """One answer for every failure, and the same work: unknown users verify against a dummy hash."""
        async with self._uow() as uow:
            user = await uow.users.get_by_login(username_or_email.strip())
        if user is None:
            await self._hasher.verify(await self._dummy(), password)
            security_log.info("authn_login_fail", extra={"reason": "unknown_user"})
            raise Unauthenticated(BAD_CREDENTIALS)
        if not await self._hasher.verify(user.password_hash, password) or user.status is not Status.ACTIVE:
            security_log.info("authn_login_fail", extra={"user_id": user.id, "reason": "credentials_or_status"})
            raise Unauthenticated(BAD_CREDENTIALS)
        changes: dict[str, Any] = {"last_login_at": self._clock.now()}
        if self._hasher.needs_rehash(user.password_hash):
            changes["password_hash"] = await self._hasher.hash(password)
        # Record the login only while the account is as we verified it: a suspension or password
        # change that landed during the hash wins, and this login fails like any other.
        verified: dict[str, Any] = {"status": Status.ACTIVE.value, "password_hash": user.password_hash}
        tokens = await self._open_session(user, client, login=(changes, verified))
        security_log.info("authn_login_success", extra={"user_id": user.id})
        return AuthResult(replace(user, **changes), tokens)

    async def refresh(self, refresh_token: str, client: ClientInfo) -> AuthResult:
        """Rotate: the presented token is spent atomically and a new one issued in the same transaction.

        A token spent more than the grace period ago is reuse (it leaked, or a client misbehaves):
        the whole session is revoked. Within the grace period a second presentation (two tabs racing)
        only fails, so the family never forks and the winner's tokens stay valid.
        """
        now = self._clock.now()
        digest = token_digest(refresh_token)
        async with self._uow() as uow:
            if await uow.sessions.spend(digest, now):
                record = await uow.sessions.find_refresh(digest)
                session = await uow.sessions.get(record.session_id) if record else None
                user = await uow.users.get(session.user_id) if session else None
                if session is None or user is None or not self._usable(session, user, now):
                    raise Unauthenticated(BAD_REFRESH)
                fresh = new_refresh_token()
                await uow.sessions.add_refresh(session.id, token_digest(fresh), now)
                await uow.commit()
                access = self._tokens.issue(user_id=user.id, session_id=session.id, role=user.role.value, now=now)
                return AuthResult(user, TokenPair(access, fresh, self._tokens.ttl))
            record = await uow.sessions.find_refresh(digest)
            if record is not None and record.used_at is not None and self._beyond_grace(record.used_at, now):
                await uow.sessions.revoke(record.session_id, now)
                await uow.commit()
                await self._cache.forget([record.session_id])
                security_log.warning("authn_token_reuse", extra={"session_id": record.session_id})
        raise Unauthenticated(BAD_REFRESH)

    async def authenticate(self, access_token: str) -> Principal:
        """The caller behind a Bearer token, checked against its live session on every request."""
        now = self._clock.now()
        claims = self._tokens.verify(access_token, now)
        cached = await self._cache.get(claims.session_id)
        if cached is not None and cached.user_id == claims.user_id:
            return cached
        generation = self._cache.generation()  # before the read: a revocation after it voids the put
        async with self._uow() as uow:
            state = await uow.sessions.state(claims.session_id, claims.user_id)
        if (
            state is None
            or not state.session.is_active(now, self._policy.idle_seconds)
            or state.status is not Status.ACTIVE
        ):
            raise Unauthenticated(BAD_SESSION)
        principal = Principal(claims.user_id, claims.session_id, state.role.value)
        await self._cache.put(principal, generation)
        return principal

    async def logout(self, principal: Principal) -> None:
        async with self._uow() as uow:
            await uow.sessions.revoke(principal.session_id, self._clock.now())
            await uow.commit()
        await self._cache.forget([principal.session_id])
        security_log.info("authn_token_revoked", extra={"user_id": principal.user_id, "reason": "logout"})

    async def me(self, principal: Principal) -> User:
        async with self._uow() as uow:
            user = await uow.users.get(principal.user_id)
        if user is None:
            raise Unauthenticated(BAD_SESSION)
        return user

    async def sessions(self, principal: Principal) -> list[Session]:
        """The caller's live sessions, newest first."""
        now = self._clock.now()
        async with self._uow() as uow:
            found = await uow.sessions.list_for_user(principal.user_id)
        return [session for session in found if session.is_active(now, self._policy.idle_seconds)]

    async def revoke_session(self, principal: Principal, session_id: str) -> None:
        async with self._uow() as uow:
            if not await uow.sessions.revoke(session_id, self._clock.now(), user_id=principal.user_id):
                raise NotFound("No such session.")
            await uow.commit()
        await self._cache.forget([session_id])

    async def revoke_all(self, principal: Principal, keep_current: bool) -> int:
        keep = principal.session_id if keep_current else None
        async with self._uow() as uow:
            revoked = await uow.sessions.revoke_for_user(principal.user_id, self._clock.now(), keep=keep)
            await uow.commit()
        await self._cache.forget(revoked)
        return len(revoked)

    async def _open_session(
        self, user: User, client: ClientInfo, *, login: tuple[dict[str, Any], dict[str, Any]] | None = None
    ) -> TokenPair:
        now = self._clock.now()
        session = Session(
            id=str(uuid.uuid4()),
            user_id=user.id,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=self._policy.absolute_seconds),
            user_agent=client.user_agent[:255],
            ip=client.ip[:45],
        )
        refresh = new_refresh_token()
        async with self._uow() as uow:
            await uow.sessions.add(session, token_digest(refresh))
            if login is not None and not await uow.users.update(user.id, login[0], expect=login[1]):
                raise Unauthenticated(BAD_CREDENTIALS)
            await uow.commit()
        access = self._tokens.issue(user_id=user.id, session_id=session.id, role=user.role.value, now=now)
        security_log.info("authn_token_created", extra={"user_id": user.id, "session_id": session.id})
        return TokenPair(access, refresh, self._tokens.ttl)

    def _usable(self, session: Session, user: User, now: datetime) -> bool:
        return session.is_active(now, self._policy.idle_seconds) and user.status is Status.ACTIVE

    def _beyond_grace(self, used_at: datetime, now: datetime) -> bool:
        return (now - used_at).total_seconds() > self._policy.reuse_grace_seconds

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
