"""The auth domain's ports: what it offers (its use cases) and what it needs (stores, tokens, a cache).

Every store method is one atomic operation whose transaction lives inside the adapter; arguments and
results are plain frozen values, so each port can be served in-process or by a gRPC client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeAlias

from py_app.auth.models import AuthResult, ClientInfo, Rotation, Session, SessionRules, SessionState
from py_app.core.identity import Principal
from py_app.users.models import LoginWrite, NewUser, User


class SessionStore(Protocol):
    """Sessions (refresh-token families) and the digest of every refresh token ever issued."""

    async def open(self, session: Session, refresh_digest: str, login: LoginWrite | None = None) -> bool:
        """Store a new session with its first refresh token.

        With ``login``, record it on the account in the same write, guarded by what the login verified;
        when the guard fails nothing is stored and the answer is False.
        """

    async def rotate(self, digest: str, child_digest: str, now: datetime, rules: SessionRules) -> Rotation:
        """Spend the refresh token ``digest`` and store ``child_digest`` as its successor.

        The spend is a compare-and-set and the first write, so of two concurrent rotations of one
        token exactly one is ROTATED (the family never forks). A token spent within the grace whose
        child is unspent is REPLAYED; any other spent token is REUSED and its session ends.
        """

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        """The session joined with its account's current role and status."""

    async def list_for_user(self, user_id: str) -> list[Session]:
        """Unrevoked sessions, newest first."""

    async def revoke(self, session_id: str, now: datetime, user_id: str | None = None) -> bool:
        """End a live session (of ``user_id``, when given); False when there was none to end."""

    async def revoke_for_user(self, user_id: str, now: datetime, keep: str | None = None) -> list[str]:
        """End every live session of a user except ``keep``; return the ended ids."""


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


class AuthUseCases(Protocol):
    """The auth domain as transports see it, in this process or behind gRPC."""

    async def prepare(self) -> None:
        """Warm up before serving (the dummy hash), so the first request costs what later ones do."""

    async def register(self, new: NewUser, client: ClientInfo) -> AuthResult: ...

    async def login(self, username_or_email: str, password: str, client: ClientInfo) -> AuthResult: ...

    async def refresh(self, refresh_token: str, client: ClientInfo) -> AuthResult: ...

    async def authenticate(self, access_token: str) -> Principal:
        """The caller behind a Bearer token, checked against its live session; Unauthenticated if not."""

    async def logout(self, principal: Principal) -> None: ...

    async def me(self, principal: Principal) -> User: ...

    async def sessions(self, principal: Principal) -> list[Session]: ...

    async def revoke_session(self, principal: Principal, session_id: str) -> None: ...

    async def revoke_all(self, principal: Principal, keep_current: bool) -> int: ...
