"""The security adapter: the only module that imports the Rust core (ruff banned-api enforces it).

Password hashing is memory-hard and slow on purpose. It runs on a small pool of its own threads
(the Rust core releases the GIL), which bounds both concurrency and memory (each hash holds
``memory_kib`` KiB), and those threads run at the lowest CPU priority, so the event loop's thread
wins the core whenever it has work: other requests keep flowing while logins hash
(benchmarks/README.md has the measured loop lag for each strategy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from py_app import _rust_core
from py_app.auth.ports import AccessClaims
from py_app.core.errors import Unauthenticated

logger = logging.getLogger("arcana.security")

DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, DEFAULT_PARALLELISM = 19456, 2, 1
LOWEST_PRIORITY = 19


def core_version() -> str:
    """The version of the loaded Rust core, proof that the extension is built and importable."""
    return _rust_core.version()


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose derived from a configured secret (HMAC-SHA256): one key per purpose."""
    return hmac.new(secret, f"arcana/{purpose}/v1".encode(), hashlib.sha256).digest()


def default_hash_concurrency() -> int:
    """One hashing thread per core: at ~19 MiB each, memory stays small, and throughput is the machine's."""
    return os.cpu_count() or 1


def _background_priority() -> None:
    # On Linux a thread's native id is a valid PRIO_PROCESS target, so this lowers only this thread.
    with contextlib.suppress(AttributeError, OSError):  # platforms without per-thread priorities
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)


class Argon2Hasher:
    """argon2id through the Rust core on ``max_concurrent`` low-priority threads of its own."""

    def __init__(
        self,
        memory_kib: int = DEFAULT_MEMORY_KIB,
        iterations: int = DEFAULT_ITERATIONS,
        parallelism: int = DEFAULT_PARALLELISM,
        max_concurrent: int | None = None,
    ) -> None:
        self._hasher = _rust_core.PasswordHasher(memory_kib=memory_kib, iterations=iterations, parallelism=parallelism)
        self._pool = ThreadPoolExecutor(
            max_concurrent or default_hash_concurrency(), thread_name_prefix="argon2", initializer=_background_priority
        )

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, encoded: str, password: str) -> bool:
        """False for a wrong password, one too long to ever have been stored, or a damaged stored hash."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._hasher.verify, encoded, password)
        except _rust_core.PasswordTooLongError:
            return False
        except _rust_core.PasswordHashError:
            logger.error("stored password hash is malformed; the login is refused")
            return False

    def needs_rehash(self, encoded: str) -> bool:
        try:
            return self._hasher.needs_rehash(encoded)
        except _rust_core.PasswordHashError:
            return True

    def close(self) -> None:
        """Stop the hashing threads once the running hashes finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)


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
