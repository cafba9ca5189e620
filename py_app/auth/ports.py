"""The auth domain's ports: what it offers (its use cases) and what it needs (stores, tokens, a cache).

Every store method is one atomic operation whose transaction lives inside the adapter; arguments and
results are plain frozen values, so each port can be served in-process or by a gRPC client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeAlias

from py_app.auth.models import (
    AccountChange,
    AccountToken,
    AuthResult,
    ClientInfo,
    Rotation,
    Session,
    SessionRules,
    SessionState,
    TokenPurpose,
)
from py_app.core.effects import NO_EFFECTS, Effects
from py_app.core.identity import Principal
from py_app.users.models import LoginWrite, NewUser, User


class SessionStore(Protocol):
    """Sessions (refresh-token families) and the digest of every refresh token ever issued."""

    async def open(
        self, session: Session, refresh_digest: str, login: LoginWrite | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        """Store a new session with its first refresh token (and ``effects``).

        With ``login``, record it on the account in the same write, guarded by what the login verified;
        when the guard fails nothing is stored and the answer is False.
        """

    async def rotate(
        self, digest: str, child_digest: str, now: datetime, rules: SessionRules, ip: str = ""
    ) -> Rotation:
        """Spend the refresh token ``digest`` and store ``child_digest`` as its successor.

        The spend is a compare-and-set and the first write, so of two concurrent rotations of one
        token exactly one is ROTATED (the family never forks). A token spent within the grace whose
        child is unspent is REPLAYED; any other spent token is REUSED: its session ends and the audit
        log records it (``models.reuse_event``, from ``ip``) in the same transaction.
        """

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        """The session joined with its account's current role and status."""

    async def family(self, digest: str) -> str | None:
        """The session a refresh token belongs to (what refresh rate limits count by)."""

    async def list_for_user(self, user_id: str) -> list[Session]:
        """Unrevoked sessions, newest first."""

    async def revoke(
        self, session_id: str, now: datetime, user_id: str | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        """End a live session (of ``user_id``, when given); False when there was none to end."""

    async def revoke_for_user(
        self, user_id: str, now: datetime, keep: str | None = None, effects: Effects = NO_EFFECTS
    ) -> list[str]:
        """End every live session of a user except ``keep``; return the ended ids."""


class AccountTokenStore(Protocol):
    """One-time tokens sent by mail, and the changes they authorise, each one atomic operation."""

    async def issue(self, token: AccountToken, effects: Effects = NO_EFFECTS) -> None:
        """Store ``token``; every earlier unused token of the same purpose for the user dies."""

    async def find(self, digest: str, purpose: TokenPurpose, now: datetime) -> AccountToken | None:
        """The token with ``digest`` when it is unused and unexpired."""

    async def reset_password(self, digest: str, new_hash: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        """Spend a password-reset token (compare-and-set, the first write), set the new hash, and end
        every session and every other reset token of the user; False when the token is not usable."""

    async def verify_email(self, digest: str, now: datetime, effects: Effects = NO_EFFECTS) -> User | None:
        """Spend a verification token and mark the account verified, but only while its email is still
        the address the token was sent to; None when the token is not usable."""


class AccountReplica(Protocol):
    """The auth service's copy of the accounts (microservices mode), written only by the users service."""

    async def apply(self, change: AccountChange, user: User | None) -> None:
        """Make the replica's row of ``change.user_id`` be ``user`` (None: deleted), end what ``change`` ends and
        forget the account in the session cache, in one transaction; idempotent, whatever the order."""


class Accounts(Protocol):
    """What authentication reads about accounts (the users store serves it in-process)."""

    async def get(self, user_id: str) -> User | None: ...

    async def find_by_login(self, username_or_email: str) -> User | None: ...


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    role: str
    jti: str
    expires_at: int


class AccessTokens(Protocol):
    """Issues and verifies short-lived signed access tokens."""

    ttl: int

    def issue(self, *, user_id: str, session_id: str, role: str, now: datetime) -> str: ...

    def verify(self, token: str, now: datetime) -> AccessClaims:
        """Raise Unauthenticated when the token is not valid now."""


@dataclass(frozen=True, slots=True)
class PublishedKeySet:
    """The public keys that verify access tokens, as an RFC 7517 JWK Set document, and how long it may be cached."""

    jwks: bytes
    max_age: int


class PublishedKeys(Protocol):
    """What callers need to verify access tokens themselves; empty for symmetric (HMAC) keys, which are never published.

    A key appears here before it signs and stays until its last token has expired, so a cache of this
    document no older than ``max_age`` seconds always holds the key of any valid token.
    """

    def published(self) -> PublishedKeySet: ...


# What a cache hands out before a database read and takes back with the result: an opaque version.
Stamp: TypeAlias = tuple[int, ...]


class SessionCache(Protocol):
    """Recently checked live sessions, so an authenticated request rarely reads the database.

    Correct only where every revocation, role or status change reaches it: the composition root
    picks an adapter whose invalidation reaches every process that serves requests.
    """

    async def get(self, session_id: str) -> Principal | None: ...

    async def stamp(self, session_id: str, user_id: str) -> Stamp:
        """Read before the database read; ``put`` refuses the result if anything was forgotten since."""

    async def put(self, principal: Principal, stamp: Stamp) -> None:
        """Cache the principal unless its session or user was forgotten after ``stamp`` was taken."""

    async def forget(self, session_ids: list[str]) -> None: ...

    async def forget_user(self, user_id: str) -> None: ...


class RecoveryUseCases(Protocol):
    """Password reset and email verification, by one-time tokens sent by mail."""

    async def forgot_password(self, email: str, client: ClientInfo) -> None:
        """Ask for a reset mail; the same answer and the same work whether or not the account exists."""

    async def reset_password(self, token: str, new_password: str, client: ClientInfo) -> None:
        """Set a new password with a reset token; every session of the account ends."""

    async def resend_verification(self, email: str, client: ClientInfo) -> None:
        """Ask for a new verification mail; the same answer and work whether or not the account exists."""

    async def verify_email(self, token: str, client: ClientInfo) -> User:
        """Mark the account's email verified with a verification token."""

    async def send_verification(self, user: User, ip: str) -> None:
        """Mail a verification token to a new account (registration)."""


class AuthJobs(Protocol):
    """What the outbox relay asks of the auth domain (the second half of forgot-password and resend)."""

    async def issue_password_reset(self, email: str, ip: str) -> None:
        """Mail a reset token to the account with ``email``, if there is one that may log in."""

    async def issue_verification(self, email: str, ip: str) -> None:
        """Mail a verification token to the account with ``email``, if it exists and is unverified."""


class AuthUseCases(Protocol):
    """The auth domain as transports see it, in this process or behind gRPC."""

    async def prepare(self) -> None:
        """Warm up before serving (the dummy hash), so the first request costs what later ones do."""

    async def register(self, new: NewUser, client: ClientInfo) -> AuthResult: ...

    async def login(self, username_or_email: str, password: str, client: ClientInfo) -> AuthResult: ...

    async def refresh(self, refresh_token: str, client: ClientInfo) -> AuthResult: ...

    async def authenticate(
        self, access_token: str, client: ClientInfo | None = None, *, unverified_ok: bool = False
    ) -> Principal:
        """The caller behind a Bearer token, checked against its live session; Unauthenticated if not.

        Where verified emails are required, an unverified account is EmailUnverified unless
        ``unverified_ok`` (the few calls it may make: me, logout).
        """

    async def validate(self, access_token: str, client: ClientInfo | None = None) -> Principal:
        """``authenticate`` for a token sent as a request field (REST validate, gRPC ValidateToken): one too
        long to be ours is InvalidInput naming ``access_token``, as for every other field."""

    async def logout(self, principal: Principal) -> None: ...

    async def me(self, principal: Principal) -> User: ...

    async def sessions(self, principal: Principal) -> list[Session]: ...

    async def revoke_session(self, principal: Principal, session_id: str) -> None: ...

    async def revoke_all(self, principal: Principal, keep_current: bool) -> int: ...
