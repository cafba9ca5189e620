"""REST bodies for authentication (msgspec Structs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec

from py_app.auth.models import ACCEPTED_DETAIL, ACCEPTED_STATUS, AuthResult, Session
from py_app.users.models import MAX_TOKEN
from py_app.users.schemas import EXAMPLE_ID, REQUIRED, Email, Name, NewPassword, Username, UserOut

Token = Annotated[str, msgspec.Meta(max_length=MAX_TOKEN)]
# Shaped like ours but signed by no key of any server: documentation only, never a credential.
EXAMPLE_ACCESS_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImV4YW1wbGUiLCJ0eXAiOiJhdCtqd3QifQ"  # noqa: S105
    ".eyJpc3MiOiJhcmNhbmEiLCJzdWIiOiIzZjJjOGE0ZS01YjFkLTRjN2EtOWUyZi02YThiMGMxZDJlM2YiLCJleHAiOjE3Njg0NzAzMDB9"
    ".bm90LWEtcmVhbC1zaWduYXR1cmUtb25seS1hbi1leGFtcGxl"
)
EXAMPLE_REFRESH_TOKEN = "pUq3b0n5mWc8xZr2Lk7Ye4Ta9Vd6Hs1Gf0Jn8Qw3Ex2"  # noqa: S105
EXAMPLE_SESSION_ID = "9b7e6d5c-4a3b-4c2d-8e1f-0a9b8c7d6e5f"


class RegisterIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    username: Annotated[Username, REQUIRED] = ""
    email: Annotated[Email, REQUIRED] = ""
    password: Annotated[NewPassword, REQUIRED] = ""
    first_name: Name = ""
    last_name: Name = ""

    example: ClassVar[dict[str, Any]] = {
        "username": "alice",
        "email": "alice@example.com",
        "password": "correct horse battery",
        "first_name": "Alice",
        "last_name": "Liddell",
    }


class LoginIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Bounded by the service (MAX_LOGIN, MAX_SECRET), which names every bad field in one answer.
    username_or_email: str
    password: str

    example: ClassVar[dict[str, Any]] = {"username_or_email": "alice", "password": "correct horse battery"}


class RefreshIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refresh_token: Token

    example: ClassVar[dict[str, Any]] = {"refresh_token": EXAMPLE_REFRESH_TOKEN}


class ValidateIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    access_token: Token

    example: ClassVar[dict[str, Any]] = {"access_token": EXAMPLE_ACCESS_TOKEN}


class ValidatedOut(msgspec.Struct, frozen=True):
    """Who a valid access token speaks for, checked against its live session (as gRPC ValidateToken)."""

    user_id: str
    session_id: str
    role: str

    example: ClassVar[dict[str, Any]] = {"user_id": EXAMPLE_ID, "session_id": EXAMPLE_SESSION_ID, "role": "user"}


class TokenOut(msgspec.Struct, frozen=True):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: UserOut

    example: ClassVar[dict[str, Any]] = {
        "access_token": EXAMPLE_ACCESS_TOKEN,
        "refresh_token": EXAMPLE_REFRESH_TOKEN,
        "token_type": "Bearer",
        "expires_in": 900,
        "user": UserOut.example,
    }

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

    example: ClassVar[dict[str, Any]] = {
        "id": EXAMPLE_SESSION_ID,
        "created_at": "2026-01-15T09:31:12.512004Z",
        "last_used_at": "2026-01-15T10:02:40.118230Z",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "ip": "203.0.113.7",
        "current": True,
    }

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

    example: ClassVar[dict[str, Any]] = {"items": [SessionOut.example]}


class RevokeAllIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    keep_current: bool = False

    example: ClassVar[dict[str, Any]] = {"keep_current": True}


class RevokedOut(msgspec.Struct, frozen=True):
    revoked: int

    example: ClassVar[dict[str, Any]] = {"revoked": 2}


class EmailIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The address to mail (forgot-password, resend-verification)."""

    email: Annotated[Email, REQUIRED] = ""

    example: ClassVar[dict[str, Any]] = {"email": "alice@example.com"}


class AcceptedOut(msgspec.Struct, frozen=True):
    """The one answer to a mail request, whether or not the address has an account."""

    status: str
    detail: str

    example: ClassVar[dict[str, Any]] = {
        "status": "accepted",
        "detail": "If an account has this address, a message is on its way.",
    }


ACCEPTED = AcceptedOut(status=ACCEPTED_STATUS, detail=ACCEPTED_DETAIL)
EXAMPLE_MAIL_TOKEN = "q8C2Hf9sVw1Lk0Tz7Ym4Rb6Xn3Pd5Ja2Ge8Uc0Ho1Is"  # noqa: S105 - an example, never live


class ResetIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: Annotated[Token, REQUIRED] = ""
    new_password: Annotated[NewPassword, REQUIRED] = ""

    example: ClassVar[dict[str, Any]] = {"token": EXAMPLE_MAIL_TOKEN, "new_password": "a brand new passphrase"}


class VerifyIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: Annotated[Token, REQUIRED] = ""

    example: ClassVar[dict[str, Any]] = {"token": EXAMPLE_MAIL_TOKEN}


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
