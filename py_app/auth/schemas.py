"""REST bodies for authentication (msgspec Structs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from py_app.auth.models import AuthResult, Session
from py_app.users.models import MAX_TOKEN
from py_app.users.schemas import Name, Password, ShortText, UserOut

Token = Annotated[str, msgspec.Meta(max_length=MAX_TOKEN)]


class RegisterIn(msgspec.Struct, frozen=True):
    # Missing fields default to "" so the service names every bad field in one answer.
    username: ShortText = ""
    email: ShortText = ""
    password: Password = ""
    first_name: Name = ""
    last_name: Name = ""


class LoginIn(msgspec.Struct, frozen=True):
    # Bounded by the service (MAX_LOGIN, MAX_SECRET), which names every bad field in one answer.
    username_or_email: str
    password: str


class RefreshIn(msgspec.Struct, frozen=True):
    refresh_token: Token


class ValidateIn(msgspec.Struct, frozen=True):
    access_token: Token


class ValidatedOut(msgspec.Struct, frozen=True):
    """Who a valid access token speaks for, checked against its live session (as gRPC ValidateToken)."""

    user_id: str
    session_id: str
    role: str


class TokenOut(msgspec.Struct, frozen=True):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: UserOut

    @classmethod
    def of(cls, result: AuthResult) -> TokenOut:
        tokens = result.tokens
        return cls(
            tokens.access_token, tokens.refresh_token, tokens.token_type, tokens.expires_in, UserOut.of(result.user)
        )


class SessionOut(msgspec.Struct, frozen=True):
    id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str
    ip: str
    current: bool

    @classmethod
    def of(cls, session: Session, current_id: str) -> SessionOut:
        return cls(
            session.id,
            session.created_at,
            session.last_used_at,
            session.user_agent,
            session.ip,
            session.id == current_id,
        )


class SessionsOut(msgspec.Struct, frozen=True):
    items: list[SessionOut]


class RevokeAllIn(msgspec.Struct, frozen=True):
    keep_current: bool = False


class RevokedOut(msgspec.Struct, frozen=True):
    revoked: int


class JwkOut(msgspec.Struct, frozen=True):
    """An Ed25519 public key (RFC 8037 OKP); documents what the key set holds, which the Rust core writes."""

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JwksOut(msgspec.Struct, frozen=True):
    keys: list[JwkOut]
