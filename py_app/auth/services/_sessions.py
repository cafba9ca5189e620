"""Signing in and out: register, login, refresh rotation, logout, sessions, request authentication."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from py_app.auth.models import (
    AuthResult,
    ClientInfo,
    RotationOutcome,
    Session,
    SessionRules,
    TokenPair,
    child_token,
    new_refresh_token,
    token_digest,
)
from py_app.auth.ports import AccessTokens, Accounts, RecoveryUseCases, SessionCache, SessionStore
from py_app.auth.services._throttle import LoginThrottle, login_key
from py_app.core.effects import AuditEvent, Effects, SecurityEvent, audited
from py_app.core.errors import EmailUnverified, NotFound, RateLimited, Unauthenticated
from py_app.core.identity import Principal
from py_app.core.limits import Limiter, Policy
from py_app.core.ports import AuditRecorder, Clock, Metrics, NoMetrics, PasswordHasher
from py_app.users.models import (
    MAX_LOGIN,
    MAX_SECRET,
    MAX_TOKEN,
    LoginWrite,
    NewUser,
    Role,
    Status,
    User,
    check_length,
    raise_if,
)
from py_app.users.passwords import normalize_password, verify_password
from py_app.users.ports import UserUseCases

security_log = logging.getLogger("arcana.security")

BAD_CREDENTIALS = "Invalid username, email or password."
BAD_REFRESH = "The refresh token is invalid, expired or already used."
BAD_SESSION = "The session has ended; log in again."


@dataclass(frozen=True, slots=True)
class AuthLimits:
    register: Policy  # per client address
    refresh: Policy  # per session family


class AuthService:
    """Accounts' ways in and out. Each store call is one atomic operation; hashing happens outside them."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        accounts: Accounts,
        users: UserUseCases,
        recovery: RecoveryUseCases,
        audit: AuditRecorder,
        hasher: PasswordHasher,
        tokens: AccessTokens,
        cache: SessionCache,
        clock: Clock,
        rules: SessionRules,
        refresh_key: bytes,
        throttle: LoginThrottle,
        limiter: Limiter,
        limits: AuthLimits,
        require_verified: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or NoMetrics()
        self._throttle = throttle
        self._limiter = limiter
        self._limits = limits
        self._require_verified = require_verified
        self._sessions = sessions
        self._accounts = accounts
        self._users = users
        self._recovery = recovery
        self._audit = audit
        self._hasher = hasher
        self._tokens = tokens
        self._cache = cache
        self._clock = clock
        self._rules = rules
        self._refresh_key = refresh_key
        self._dummy_hash: str | None = None

    async def prepare(self) -> None:
        """Make the dummy hash before serving, so the first unknown-user login costs what later ones do."""
        await self._dummy()

    async def register(self, new: NewUser, client: ClientInfo) -> AuthResult:
        """Create an account (role user), mail it a verification token and open its first session."""
        await self._limiter.hit(self._limits.register, client.ip)
        user = await self._users.create(replace(new, role=Role.USER.value, is_verified=False), ip=client.ip)
        await self._recovery.send_verification(user, client.ip)
        return AuthResult(user, await self._open_session(user, client, grant="register"))

    async def login(self, username_or_email: str, password: str, client: ClientInfo) -> AuthResult:
        """One answer for every failure, and the same work: unknown users verify against a dummy hash."""
        raise_if(
            check_length("username_or_email", username_or_email, MAX_LOGIN),
            check_length("password", password, MAX_SECRET),
        )
        user = await self._accounts.find_by_login(username_or_email.strip())
        # Counted per account (every spelling of it together), or per login as typed when there is none;
        # checked before any hashing, known or not.
        account = f"user:{user.id}" if user is not None else f"login:{login_key(username_or_email)}"
        try:
            attempt = await self._throttle.admit(account, client.ip)
        except RateLimited:
            self._metrics.login("limited")
            raise
        if user is None:
            await verify_password(self._hasher, await self._dummy(), password)
            await self._failed(None, "unknown_user", client, locked=await self._throttle.failed(account, attempt))
            raise Unauthenticated(BAD_CREDENTIALS)
        matches, legacy = await verify_password(self._hasher, user.password_hash, password)
        if not matches or user.status is not Status.ACTIVE:
            locked = await self._throttle.failed(account, attempt)
            await self._failed(user.id, "credentials_or_status", client, locked=locked)
            raise Unauthenticated(BAD_CREDENTIALS)
        await self._throttle.succeeded(account, client.ip)
        stale = legacy or self._hasher.needs_rehash(user.password_hash)
        rehash = await self._hasher.hash(normalize_password(password)) if stale else None
        # Recorded only while the account is as we verified it: a suspension or password change that
        # landed during the hash wins, and this login fails like any other.
        write = LoginWrite(user_id=user.id, verified_hash=user.password_hash, now=self._clock.now(), new_hash=rehash)
        tokens = await self._open_session(user, client, write, grant="login")
        self._metrics.login("success")
        security_log.info(SecurityEvent.LOGIN_SUCCESS, extra={"user_id": user.id})
        return AuthResult(replace(user, last_login_at=write.now, password_hash=rehash or user.password_hash), tokens)

    async def refresh(self, refresh_token: str, client: ClientInfo) -> AuthResult:
        """Rotate: the presented token is spent atomically and its child stored in the same write.

        Presented again within the grace period while its child is unspent (two tabs racing), the
        same child comes back with a fresh access token, so both tabs keep working and the family
        never forks. A token spent beyond the grace, or whose child is already spent (an older
        generation), is reuse: it leaked or a client misbehaves, and the whole session ends.
        """
        raise_if(check_length("refresh_token", refresh_token, MAX_TOKEN))
        now = self._clock.now()
        child = child_token(self._refresh_key, refresh_token)
        digest, child_digest = token_digest(refresh_token), token_digest(child)
        if self._limiter.enabled and (family := await self._sessions.family(digest)) is not None:
            try:
                await self._limiter.hit(self._limits.refresh, family)
            except RateLimited:
                self._metrics.refresh("limited")
                raise
        rotation = await self._sessions.rotate(digest, child_digest, now, self._rules, ip=client.ip)
        if rotation.grants and rotation.session and rotation.user:
            access = self._tokens.issue(
                user_id=rotation.user.id, session_id=rotation.session.id, role=rotation.user.role.value, now=now
            )
            self._metrics.refresh(rotation.outcome.value)
            self._metrics.token_issued("refresh")
            return AuthResult(rotation.user, TokenPair(access, child, self._tokens.ttl))
        if rotation.outcome is RotationOutcome.REUSED and rotation.session:
            await self._cache.forget([rotation.session.id])
            self._metrics.refresh_reuse()
            security_log.warning(SecurityEvent.TOKEN_REUSE, extra={"session_id": rotation.session.id})
        self._metrics.refresh(RotationOutcome.REUSED.value if rotation.outcome is RotationOutcome.REUSED else "invalid")
        raise Unauthenticated(BAD_REFRESH)

    async def authenticate(
        self, access_token: str, client: ClientInfo | None = None, *, unverified_ok: bool = False
    ) -> Principal:
        """The caller behind a Bearer token, checked against its live session on every request."""
        ip = client.ip if client is not None else ""
        transport = (client.transport if client is not None else "") or "internal"
        now = self._clock.now()
        try:
            claims = self._tokens.verify(access_token, now)
        except Unauthenticated:
            self._metrics.token_verification("invalid", transport)
            raise
        cached = await self._cache.get(claims.session_id)
        if cached is not None and cached.user_id == claims.user_id:
            return self._admitted(_from(cached, ip), unverified_ok, transport)
        stamp = await self._cache.stamp(claims.session_id, claims.user_id)  # before the read
        state = await self._sessions.state(claims.session_id, claims.user_id)
        if state is None or not state.usable(now, self._rules):
            self._metrics.token_verification("session_ended", transport)
            raise Unauthenticated(BAD_SESSION)
        principal = Principal(claims.user_id, claims.session_id, state.role.value, verified=state.verified)
        await self._cache.put(principal, stamp)
        return self._admitted(_from(principal, ip), unverified_ok, transport)

    async def validate(self, access_token: str, client: ClientInfo | None = None) -> Principal:
        """A token handed in as a field to be checked, rather than as the caller's own credential."""
        raise_if(check_length("access_token", access_token, MAX_TOKEN))
        return await self.authenticate(access_token, client)

    def _admitted(self, principal: Principal, unverified_ok: bool, transport: str) -> Principal:
        if self._require_verified and not principal.verified and not unverified_ok:
            self._metrics.token_verification("unverified", transport)
            raise EmailUnverified("Confirm your email address first: only verification, me and logout are open.")
        self._metrics.token_verification("valid", transport)
        return principal

    async def logout(self, principal: Principal) -> None:
        now = self._clock.now()
        await self._sessions.revoke(principal.session_id, now, effects=self._revoked(principal, "logout", now))
        await self._cache.forget([principal.session_id])
        security_log.info(SecurityEvent.TOKEN_REVOKED, extra={"user_id": principal.user_id, "reason": "logout"})

    async def me(self, principal: Principal) -> User:
        user = await self._accounts.get(principal.user_id)
        if user is None:
            raise Unauthenticated(BAD_SESSION)
        return user

    async def sessions(self, principal: Principal) -> list[Session]:
        """The caller's live sessions, newest first."""
        now = self._clock.now()
        found = await self._sessions.list_for_user(principal.user_id)
        return [session for session in found if session.is_active(now, self._rules.idle_seconds)]

    async def revoke_session(self, principal: Principal, session_id: str) -> None:
        now = self._clock.now()
        effects = self._revoked(principal, "revoke_session", now)
        if not await self._sessions.revoke(session_id, now, user_id=principal.user_id, effects=effects):
            raise NotFound("No such session.")
        await self._cache.forget([session_id])

    async def revoke_all(self, principal: Principal, keep_current: bool) -> int:
        keep = principal.session_id if keep_current else None
        now = self._clock.now()
        effects = self._revoked(principal, "revoke_all", now)
        revoked = await self._sessions.revoke_for_user(principal.user_id, now, keep=keep, effects=effects)
        await self._cache.forget(revoked)
        return len(revoked)

    async def _open_session(
        self, user: User, client: ClientInfo, login: LoginWrite | None = None, *, grant: str
    ) -> TokenPair:
        now = self._clock.now()
        session = Session(
            id=str(uuid.uuid4()),
            user_id=user.id,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=self._rules.absolute_seconds),
            user_agent=_printable(client.user_agent)[:255],
            ip=client.ip[:45],
        )
        refresh = new_refresh_token()
        opened = AuditEvent(
            SecurityEvent.LOGIN_SUCCESS,
            at=now,
            actor_id=user.id,
            target_id=user.id,
            ip=client.ip,
            details={"session_id": session.id, "via": "login" if login is not None else "register"},
        )
        if not await self._sessions.open(session, token_digest(refresh), login, audited(opened)):
            raise Unauthenticated(BAD_CREDENTIALS)
        access = self._tokens.issue(user_id=user.id, session_id=session.id, role=user.role.value, now=now)
        self._metrics.token_issued(grant)
        security_log.info("authn_token_created", extra={"user_id": user.id, "session_id": session.id})
        return TokenPair(access, refresh, self._tokens.ttl)

    async def _failed(self, user_id: str | None, reason: str, client: ClientInfo, *, locked: bool) -> None:
        now = self._clock.now()
        events = [
            AuditEvent(SecurityEvent.LOGIN_FAIL, at=now, target_id=user_id, ip=client.ip, details={"reason": reason})
        ]
        if locked:
            events.append(AuditEvent(SecurityEvent.LOGIN_LOCK, at=now, target_id=user_id, ip=client.ip))
        await self._audit.record(*events)
        self._metrics.login("failure")
        security_log.info(SecurityEvent.LOGIN_FAIL, extra={"user_id": user_id, "reason": reason})

    @staticmethod
    def _revoked(principal: Principal, reason: str, now: datetime) -> Effects:
        return audited(
            AuditEvent(
                SecurityEvent.TOKEN_REVOKED,
                at=now,
                actor_id=principal.user_id,
                target_id=principal.user_id,
                ip=principal.ip,
                details={"reason": reason},
            )
        )

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash


def _printable(text: str) -> str:
    """A user agent as shown to the user in their session list: no control or format characters."""
    return "".join(char if char.isprintable() else "?" for char in text)


def _from(principal: Principal, ip: str) -> Principal:
    """``principal`` for this request's address (``dataclasses.replace`` costs several times a direct build)."""
    return Principal(principal.user_id, principal.session_id, principal.role, verified=principal.verified, ip=ip)
