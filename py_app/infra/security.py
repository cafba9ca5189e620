"""The security adapter: the only module that imports the Rust core (enforced by import-linter).

Password hashing is memory-hard and slow on purpose, so it runs in worker threads (the Rust core
releases the GIL) behind a semaphore that bounds memory: each hash holds ``memory_kib`` KiB.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime

from py_app import _rust_core
from py_app.auth.ports import AccessClaims
from py_app.core.errors import Unauthenticated

DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, DEFAULT_PARALLELISM = 19456, 2, 1


def core_version() -> str:
    """The version of the loaded Rust core, proof that the extension is built and importable."""
    return _rust_core.version()


class Argon2Hasher:
    """argon2id through the Rust core, off the event loop, at most ``max_concurrent`` at a time."""

    def __init__(
        self,
        memory_kib: int = DEFAULT_MEMORY_KIB,
        iterations: int = DEFAULT_ITERATIONS,
        parallelism: int = DEFAULT_PARALLELISM,
        max_concurrent: int = 4,
    ) -> None:
        self._hasher = _rust_core.PasswordHasher(memory_kib=memory_kib, iterations=iterations, parallelism=parallelism)
        self._slots = asyncio.Semaphore(max_concurrent)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, encoded: str, password: str) -> bool:
        """False for a wrong password, and for one too long to ever have been stored."""
        async with self._slots:
            try:
                return await asyncio.to_thread(self._hasher.verify, encoded, password)
            except _rust_core.PasswordTooLongError:
                return False

    def needs_rehash(self, encoded: str) -> bool:
        return self._hasher.needs_rehash(encoded)


class JwtAccessTokens:
    """HS256 access tokens (RFC 9068 shape, ``typ: at+jwt``) signed and verified by the Rust core."""

    def __init__(self, secret: bytes, *, issuer: str, audience: str, ttl: int, leeway: int = 30) -> None:
        # The key id names the key without revealing it: a prefix of its SHA-256.
        kid = hashlib.sha256(secret).hexdigest()[:16]
        self.ttl = ttl
        self._issuer, self._audience = issuer, audience
        self._signer = _rust_core.TokenSigner("HS256", kid, secret)
        self._verifier = _rust_core.TokenVerifier(
            "HS256", {kid: secret}, issuer=issuer, audiences=[audience], typ="at+jwt", leeway=leeway
        )

    def issue(self, *, user_id: str, session_id: str, role: str, now: datetime) -> str:
        issued = int(now.timestamp())
        return self._signer.sign_access(
            iss=self._issuer,
            sub=user_id,
            aud=self._audience,
            iat=issued,
            exp=issued + self.ttl,
            jti=uuid.uuid4().hex,
            sid=session_id,
            role=role,
        )

    def verify(self, token: str, now: datetime) -> AccessClaims:
        try:
            sub, sid, role, jti, exp = self._verifier.verify_access(token, int(now.timestamp()))
        except _rust_core.TokenError:
            raise Unauthenticated("The access token is invalid or has expired.") from None
        return AccessClaims(user_id=sub, session_id=sid, role=role, jti=jti, expires_at=exp)
