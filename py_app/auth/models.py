"""Sessions, tokens and the rules that decide whether a session may be used. Pure Python.

The rules here are shared by every session-store adapter (SQL, in-memory fakes, later gRPC), so each
adapter applies exactly the same judgement inside its own atomic operation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from py_app.core.effects import AuditEvent, SecurityEvent
from py_app.users.models import Role, Status, User

REFRESH_TOKEN_BYTES = 32  # 256 bits
# The one answer to a mail request (forgot-password, resend), on every transport, whatever the address.
ACCEPTED_STATUS = "accepted"
ACCEPTED_DETAIL = "If an account has this address, a message is on its way."


@dataclass(frozen=True, slots=True)
class SessionRules:
    """Refresh-token lifetimes (REFERENCE: idle 7 d, absolute 30 d) and the concurrent-refresh grace."""

    idle_seconds: int = 7 * 24 * 3600
    absolute_seconds: int = 30 * 24 * 3600
    reuse_grace_seconds: int = 10

    def within_grace(self, spent_at: datetime, now: datetime) -> bool:
        """A spent token shown again this soon is a race between two tabs, not a stolen token.

        A grace of 0 grants none: every second presentation is reuse, however close the race.
        """
        return self.reuse_grace_seconds > 0 and (now - spent_at).total_seconds() <= self.reuse_grace_seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A login: one refresh-token family. Its id is the ``sid`` claim of its access tokens."""

    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime  # absolute limit, fixed at login
    user_agent: str = ""
    ip: str = ""
    revoked_at: datetime | None = None

    def is_active(self, now: datetime, idle_seconds: int) -> bool:
        if self.revoked_at is not None or now >= self.expires_at:
            return False
        return (now - self.last_used_at).total_seconds() < idle_seconds


@dataclass(frozen=True, slots=True)
class SessionState:
    """What an authenticated request needs to know, read in one query: the session and its account."""

    session: Session
    role: Role
    status: Status
    verified: bool = True  # the account's email

    def usable(self, now: datetime, rules: SessionRules) -> bool:
        return self.session.is_active(now, rules.idle_seconds) and self.status is Status.ACTIVE


class RotationOutcome(StrEnum):
    ROTATED = "rotated"  # the presented token was spent now and its child stored
    REPLAYED = "replayed"  # spent moments ago (within the grace) and its child is still unspent
    REUSED = "reused"  # spent earlier, or its child already spent: the session was ended
    INVALID = "invalid"  # unknown token, or a session or account that may no longer be used


@dataclass(frozen=True, slots=True)
class Rotation:
    """What one atomic refresh did: the family concerned, and its account when tokens may be issued."""

    outcome: RotationOutcome
    session: Session | None = None
    user: User | None = None

    @property
    def grants(self) -> bool:
        """Tokens may be handed out: freshly rotated, or the same child again for a racing tab."""
        return self.outcome in (RotationOutcome.ROTATED, RotationOutcome.REPLAYED)


class TokenPurpose(StrEnum):
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose's name, not a secret
    EMAIL_VERIFY = "email_verify"


TOKEN_LIFETIMES = {TokenPurpose.PASSWORD_RESET: 30 * 60, TokenPurpose.EMAIL_VERIFY: 24 * 3600}


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountToken:
    """A one-time token sent by mail. Stored as its digest; the token is derived from ``id`` (``account_token``)."""

    id: str
    digest: str
    purpose: TokenPurpose
    user_id: str
    email: str  # the address it was sent to (a verification proves exactly that address)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the transport knows about the caller, kept with the session for the user to see."""

    user_agent: str = ""
    ip: str = ""
    transport: str = ""  # "rest" or "grpc": how the request came (for the metrics; never stored)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret


@dataclass(frozen=True, slots=True)
class AuthResult:
    user: User
    tokens: TokenPair


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountChange:
    """An account write of the users service, as its propagation to the auth service's replica carries it.

    It names the account, not its new state: whoever delivers it reads the account as it is then, so the
    same change delivered twice, or two changes delivered out of order, leave the replica as the source is.
    ``ends_sessions``: every session of the account created at or before ``at`` ends, but ``keep``;
    ``ends_resets``: so does every unused password-reset token (a password change). ``audit``: the write's
    records, for the audit log the auth service keeps (appended once, by id).
    """

    user_id: str
    at: datetime
    ends_sessions: bool = False
    ends_resets: bool = False
    keep: str | None = None
    audit: tuple[AuditEvent, ...] = ()


def reuse_event(session: Session, now: datetime, ip: str) -> AuditEvent:
    """What the audit log says when a spent refresh token comes back and its session ends."""
    return AuditEvent(
        SecurityEvent.TOKEN_REUSE, at=now, target_id=session.user_id, ip=ip, details={"session_id": session.id}
    )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def token_digest(token: str) -> str:
    """Refresh tokens are stored only as SHA-256 digests (256-bit random input: no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def account_token(key: bytes, token_id: str) -> str:
    """The one-time token of an ``AccountToken`` row: derived from its id under a server key (256 bits)."""
    mac = hmac.new(key, f"account-token:{token_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def child_token(key: bytes, presented: str) -> str:
    """The one refresh token that may follow ``presented``: derived under a server key, never stored.

    Deterministic, so a second presentation of the same token (two tabs racing) can be handed the
    same child instead of forking the family; unguessable without the key, so the stored digests
    reveal nothing.
    """
    mac = hmac.new(key, presented.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
