"""Arcana's native core (Rust, PyO3): token signing/verification and argon2id.

Every exception raised by the core subclasses :class:`CoreError` (itself a ``ValueError``),
except ``TypeError`` for claims ``TokenSigner.sign`` cannot encode as JSON and plain
``ValueError`` for invalid constructor arguments. Handles are immutable and safe to share between threads.
"""

from typing import Any, Final, Literal, Self, final

__all__ = [
    "BUILD_PROFILE",
    "MAX_PASSWORD_BYTES",
    "CoreError",
    "ExpiredTokenError",
    "ImmatureTokenError",
    "InvalidAlgorithmError",
    "InvalidAudienceError",
    "InvalidIssuerError",
    "InvalidSignatureError",
    "InvalidTypeError",
    "MalformedTokenError",
    "PasswordHashError",
    "PasswordHasher",
    "PasswordTooLongError",
    "TokenError",
    "TokenSigner",
    "TokenVerifier",
    "UnknownKeyError",
    "version",
]

__version__: Final[str]
"""The crate version (Cargo.toml); the same string as ``version()``."""

BUILD_PROFILE: Final[Literal["release", "debug"]]
"""The cargo profile the extension was built with; ``make setup`` builds "release"."""

MAX_PASSWORD_BYTES: Final[int]
"""Longest password accepted (UTF-8 bytes, 1024); longer ones raise PasswordTooLongError."""

def version() -> str:
    """The crate version of the loaded extension."""

class CoreError(ValueError):
    """Base class of every error raised by the Rust core."""

class PasswordHashError(CoreError):
    """A stored hash is not a well-formed, supported argon2 PHC string."""

class PasswordTooLongError(CoreError):
    """The password is longer than MAX_PASSWORD_BYTES UTF-8 bytes."""

class TokenError(CoreError):
    """Base class of every token verification failure."""

class MalformedTokenError(TokenError):
    """Bad compact form, base64, JSON, duplicate or wrong-type claim, or oversized token."""

class InvalidAlgorithmError(TokenError):
    """The header alg is not the verifier's single allowed algorithm (including "none")."""

class UnknownKeyError(TokenError):
    """The header kid is missing (with several keys in the ring) or unknown."""

class InvalidSignatureError(TokenError):
    """The signature does not verify (including a signature of the wrong length)."""

class ExpiredTokenError(TokenError):
    """exp <= now - leeway."""

class ImmatureTokenError(TokenError):
    """nbf or iat > now + leeway."""

class InvalidIssuerError(TokenError):
    """iss is missing or differs from the configured issuer."""

class InvalidAudienceError(TokenError):
    """aud is missing or does not intersect the audience allowlist."""

class InvalidTypeError(TokenError):
    """The header typ is missing or differs from the configured type."""

@final
class PasswordHasher:
    """argon2id hasher with parameters fixed at construction (PHC strings, OS-random salt).

    ``hash`` and ``verify`` release the GIL: call them via ``asyncio.to_thread`` from async code.
    """

    def __new__(
        cls,
        memory_kib: int = 19456,
        iterations: int = 2,
        parallelism: int = 1,
        salt_len: int = 16,
        hash_len: int = 32,
    ) -> Self:
        """Raise ValueError for invalid parameters (memory_kib <= 1 GiB, salt 8..48, hash 16..64)."""

    @property
    def memory_kib(self) -> int:
        """Memory cost in KiB."""

    @property
    def iterations(self) -> int:
        """Time cost (passes)."""

    @property
    def parallelism(self) -> int:
        """Lanes."""

    def hash(self, password: str) -> str:
        """Hash ``password``; returns ``$argon2id$v=19$m=..,t=..,p=..$salt$tag``."""

    def verify(self, encoded: str, password: str) -> bool:
        """True if ``password`` matches; False if not; PasswordHashError if ``encoded`` is malformed.

        Uses the parameters stored in ``encoded`` (argon2id, argon2i and argon2d are accepted).
        """

    def needs_rehash(self, encoded: str) -> bool:
        """True when the stored algorithm, version, m, t, p or tag length differ from this hasher's."""

@final
class TokenSigner:
    """Signs JWS compact tokens with one key: HS256/HS384/HS512 secret (>= 32 bytes) or Ed25519 seed."""

    def __new__(cls, alg: str, kid: str, key: bytes) -> Self:
        """``alg`` in {"HS256","HS384","HS512","EdDSA"}; EdDSA ``key`` is the 32-byte private seed."""

    @property
    def alg(self) -> str:
        """The JWS algorithm."""

    @property
    def kid(self) -> str:
        """The key id written into every header."""

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        """Sign JSON claims (str/int/float/bool/None/list/tuple/dict with str keys)."""

    def sign_access(
        self,
        *,
        iss: str,
        sub: str,
        aud: str,
        iat: int,
        exp: int,
        jti: str,
        sid: str,
        role: str,
        typ: str = "at+jwt",
    ) -> str:
        """Build ``{"iss","sub","aud","iat","exp","jti","sid","role"}`` and sign it in one call."""

    def public_jwk(self) -> dict[str, str] | None:
        """The public JWK (OKP/Ed25519 with kid, alg, use) for EdDSA; None for HMAC."""

@final
class TokenVerifier:
    """Frozen key ring for exactly one algorithm (one or more kids) plus the claim policy.

    Order: size, compact form + strict base64url, header object, alg, kid, signature (constant
    time), payload object + claim types, exp/nbf/iat with leeway, iss, aud, typ. A header
    without kid is accepted only when the ring holds exactly one key.
    """

    def __new__(
        cls,
        alg: str,
        keys: dict[str, bytes],
        *,
        issuer: str,
        audiences: list[str],
        typ: str | None = "at+jwt",
        leeway: int = 30,
        max_token_bytes: int = 8192,
    ) -> Self:
        """HS*: kid -> secret (>= 32 bytes); EdDSA: kid -> 32-byte public key. ValueError if invalid."""

    def verify(self, token: str, now: int) -> dict[str, Any]:
        """Verify at Unix time ``now`` and return all claims; raise a TokenError subclass."""

    def verify_access(self, token: str, now: int) -> tuple[str, str, str, str, int]:
        """Verify and return ``(sub, sid, role, jti, exp)``; those claims are required."""

    def jwks(self) -> str:
        """RFC 7517 JWKS document of the public keys (``{"keys":[]}`` for HMAC)."""
