"""The service's token adapter on two Rust surfaces, measured as the service calls it.

- ``kwargs-tuple``: ``TokenSigner.sign_access(**claims)`` builds the claims in Rust;
  ``TokenVerifier.verify_access`` returns ``(sub, sid, role, jti, exp)``.
- ``bytes-struct``: Python encodes a msgspec Struct, ``TokenSigner.sign_payload`` signs the bytes;
  ``TokenVerifier.verify_payload`` returns the verified bytes, msgspec decodes them into a Struct.

``kwargs-tuple`` is ``py_app.infra.security.JwtAccessTokens`` itself; ``bytes-struct`` is that class
with ``issue``/``verify`` rewritten for the bytes surface. Both run the whole method (clock
conversion, ``jti``, building ``AccessClaims``). Each pair runs back to back in every repetition
(``rep``), so a neighbour's load hits both sides alike; report.py takes the median over
repetitions of the per-repetition ratio. benchmarks/README.md records the decision these numbers
made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from py_app import _rust_core as rc
from py_app.auth.ports import AccessClaims
from py_app.core.errors import Unauthenticated
from py_app.infra.security import JwtAccessTokens

REPS = 7
ROUNDS, ITERATIONS = 60, 300
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ISSUE: dict[str, Any] = {
    "user_id": "0b9c2d4e-8f1a-4c3b-9e7d-1a2b3c4d5e6f",
    "session_id": "9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b",
    "role": "user",
    "now": NOW,
}


class _Payload(msgspec.Struct, frozen=True, gc=False):
    iss: str
    sub: str
    aud: str
    iat: int
    exp: int
    jti: str
    sid: str
    role: str


class _Verified(msgspec.Struct, frozen=True, gc=False):
    sub: str
    sid: str
    role: str
    jti: str
    exp: int


_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(_Verified).decode


class BytesStructTokens(JwtAccessTokens):
    """The service's adapter with issue/verify moved to the bytes surface (same errors, same claims)."""

    def issue(self, *, user_id: str, session_id: str, role: str, now: datetime) -> str:
        issued = int(now.timestamp())
        payload = _Payload(
            iss=self._issuer,
            sub=user_id,
            aud=self._audience,
            iat=issued,
            exp=issued + self.ttl,
            jti=uuid.uuid4().hex,
            sid=session_id,
            role=role,
        )
        return self._signer.sign_payload(_ENCODE(payload), "at+jwt")

    def verify(self, token: str, now: datetime) -> AccessClaims:
        try:
            c = _DECODE(self._verifier.verify_payload(token, int(now.timestamp())))
        except (rc.TokenError, msgspec.ValidationError):
            raise Unauthenticated("The access token is invalid or has expired.") from None
        return AccessClaims(user_id=c.sub, session_id=c.sid, role=c.role, jti=c.jti, expires_at=c.exp)


# The service's own class is the kwargs-tuple variant (benchmarks/README.md: bytes-struct lost on verify).
VARIANTS: dict[str, type[JwtAccessTokens]] = {"kwargs-tuple": JwtAccessTokens, "bytes-struct": BytesStructTokens}


def _adapter(variant: str) -> JwtAccessTokens:
    return VARIANTS[variant](b"k" * 64, issuer="https://arcana.example", audience="arcana-api", ttl=900)


def _check(adapter: JwtAccessTokens) -> str:
    """Both variants issue tokens the other verifies, with the same claims."""
    token = adapter.issue(**ISSUE)
    for other in VARIANTS:
        claims = _adapter(other).verify(token, NOW)
        assert (claims.user_id, claims.session_id, claims.role) == (ISSUE["user_id"], ISSUE["session_id"], "user")
    return token


def _run(benchmark: Any, group: str, variant: str, rep: int, fn: Callable[[], object]) -> None:
    benchmark.group = group
    benchmark.extra_info["rep"] = rep
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=ITERATIONS, warmup_rounds=5)


# pytest varies the top decorator fastest: the two variants of one repetition run back to back.
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("rep", range(REPS))
def test_adapter_issue(benchmark: Any, variant: str, rep: int) -> None:
    adapter = _adapter(variant)
    _check(adapter)
    _run(benchmark, "adapter issue HS256", variant, rep, lambda: adapter.issue(**ISSUE))


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("rep", range(REPS))
def test_adapter_verify(benchmark: Any, variant: str, rep: int) -> None:
    adapter = _adapter(variant)
    token = _check(adapter)
    _run(benchmark, "adapter verify HS256", variant, rep, lambda: adapter.verify(token, NOW))
