"""The security adapter: the only module that imports the Rust core (ruff banned-api enforces it).

Password hashing is memory-hard and slow on purpose. It runs on a small pool of its own threads
(the Rust core releases the GIL), which bounds both concurrency and memory (each hash holds
``memory_kib`` KiB), and those threads run at the lowest CPU priority, so the event loop's thread
wins the core whenever it has work: other requests keep flowing while logins hash
(benchmarks/README.md has the measured loop lag for each strategy).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from py_app import _rust_core
from py_app.auth.ports import AccessClaims, PublishedKeySet
from py_app.core.errors import Unauthenticated
from py_app.infra.keys import KeyRing, KeyRingError, RingKey
from py_app.users.models import MAX_TOKEN

logger = logging.getLogger("arcana.security")

DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, DEFAULT_PARALLELISM = 19456, 2, 1
LOWEST_PRIORITY = 19
LEEWAY_SECONDS = 30  # clock skew allowed on exp/nbf/iat (RFC 8725 and REFERENCE: at most 30 s)


def core_version() -> str:
    """The version of the loaded Rust core, proof that the extension is built and importable."""
    return _rust_core.version()


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose derived from a configured secret (HMAC-SHA256): one key per purpose."""
    return hmac.new(secret, f"arcana/{purpose}/v1".encode(), hashlib.sha256).digest()


def default_hash_concurrency() -> int:
    """One hashing thread per core this process may run on: at ~19 MiB each, memory stays small, and
    throughput is the machine's. The cores of its affinity, not the machine's (``os.cpu_count``): a
    worker pinned to one core with two hashing threads time-slices two 19 MiB working sets on it."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # platforms without affinity (macOS)
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
    """Access tokens (RFC 9068 shape, ``typ: at+jwt``) signed and verified by the Rust core, from a key ring.

    One algorithm per instance, fixed by its first ring (RFC 8725: HMAC and asymmetric keys never share a
    verifier). The signer is the ring's active key; the verifier holds every key not retired. ``use`` swaps
    in a ring (the key watcher calls it from its own thread): the verifier is replaced before the signer, so
    a token this process signs always verifies here, and each call reads its key handle through one
    attribute, so it sees one ring whole. The hot path does exactly what it did with a single key.
    """

    def __init__(
        self,
        ring: KeyRing,
        *,
        issuer: str,
        audience: str,
        ttl: int,
        leeway: int = LEEWAY_SECONDS,
        jwks_max_age: int = 600,
        now: int | None = None,
    ) -> None:
        self.ttl = ttl
        self.alg = ring.alg
        self._issuer, self._audience, self._leeway, self._max_age = issuer, audience, leeway, jwks_max_age
        self.use(ring, int(time.time()) if now is None else now)

    def use(self, ring: KeyRing, now: int) -> None:
        """Sign with the ring's active key and accept every key it does not retire; KeyRingError if unusable."""
        if ring.alg != self.alg:
            raise KeyRingError(
                f"the ring holds {ring.alg} keys but this process verifies {self.alg}; restart to switch"
            )
        signing = ring.signing_key(now)
        try:
            verifier = _rust_core.TokenVerifier(
                ring.alg,
                {key.kid: _verification_key(key) for key in ring.verifying_keys(now)},
                issuer=self._issuer,
                audiences=[self._audience],
                typ="at+jwt",
                leeway=self._leeway,
                max_token_bytes=MAX_TOKEN,
            )
            signer = _rust_core.TokenSigner(ring.alg, signing.kid, signing.material)
        except ValueError as exc:  # material the core refuses (wrong length, weak key)
            raise KeyRingError(f"unusable key: {exc}") from None
        self._verifier = verifier
        self._published = PublishedKeySet(verifier.jwks().encode(), self._max_age)
        self._signer = signer

    @property
    def kid(self) -> str:
        """The key id new tokens are signed with."""
        return self._signer.kid

    def published(self) -> PublishedKeySet:
        return self._published

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


def _verification_key(key: RingKey) -> bytes:
    """What verifies a key's tokens: the HMAC secret itself, or the Ed25519 public key of the seed."""
    if key.alg != "EdDSA":
        return key.material
    jwk = _rust_core.TokenSigner("EdDSA", key.kid, key.material).public_jwk() or {}
    return base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))


class NoPublishedKeys:
    """An empty key set, for token adapters that publish nothing (symmetric keys, test fakes)."""

    def __init__(self, max_age: int = 600) -> None:
        self._published = PublishedKeySet(b'{"keys":[]}', max_age)

    def published(self) -> PublishedKeySet:
        return self._published
