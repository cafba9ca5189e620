"""Sessions, tokens and principals. Pure Python."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from py_app.users.models import User

REFRESH_TOKEN_BYTES = 32  # 256 bits


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
class ClientInfo:
    """What the transport knows about the caller, kept with the session for the user to see."""

    user_agent: str = ""
    ip: str = ""


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


def new_refresh_token() -> str:
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def token_digest(token: str) -> str:
    """Refresh tokens are stored only as SHA-256 digests (256-bit random input: no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()
