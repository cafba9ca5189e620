"""Shared helpers for the Rust-core tests (imported as a plain module: keys, claims, token forging)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from py_app import _rust_core as rc

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "rust_core.json").read_text("utf-8"))
NOW = 1_700_000_000
ISSUER = "https://arcana.test"
AUDIENCE = "arcana-api"
SECRETS = {
    "HS256": b"s" * 32 + b"256-secret-padding-to-64-bytes!!",
    "HS384": b"t" * 48 + b"384-secret-padd!",
    "HS512": b"u" * 64,
}
ED_SEED = bytes(range(32))
HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ed_public(seed: bytes = ED_SEED) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signing_key(alg: str) -> bytes:
    return ED_SEED if alg == "EdDSA" else SECRETS[alg]


def verify_key(alg: str) -> bytes:
    return ed_public() if alg == "EdDSA" else SECRETS[alg]


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": AUDIENCE,
        "iat": NOW,
        "exp": NOW + 900,
        "jti": "jti-1",
        "sid": "sid-1",
        "role": "user",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def signer(alg: str = "HS256", kid: str = "k1") -> rc.TokenSigner:
    return rc.TokenSigner(alg, kid, signing_key(alg))


def verifier(alg: str = "HS256", kids: tuple[str, ...] = ("k1",), **kwargs: Any) -> rc.TokenVerifier:
    options: dict[str, Any] = {"issuer": ISSUER, "audiences": [AUDIENCE]}
    options.update(kwargs)
    return rc.TokenVerifier(alg, dict.fromkeys(kids, verify_key(alg)), **options)


def access_token(alg: str = "HS256", kid: str = "k1", **overrides: Any) -> str:
    return signer(alg, kid).sign(claims(**overrides), typ="at+jwt")


def forge(
    header: dict[str, Any] | bytes,
    payload: dict[str, Any] | bytes,
    *,
    alg: str = "HS256",
    key: bytes | None = None,
) -> str:
    """A token with arbitrary header/payload bytes, correctly signed with ``alg`` (HS* or EdDSA)."""
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    p = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    signing_input = f"{b64(h)}.{b64(p)}".encode()
    if alg == "EdDSA":
        sig = Ed25519PrivateKey.from_private_bytes(key or ED_SEED).sign(signing_input)
    else:
        sig = hmac.new(key or SECRETS[alg], signing_input, HASHES[alg]).digest()
    return f"{signing_input.decode()}.{b64(sig)}"


def header(alg: str = "HS256", kid: str | None = "k1", typ: str | None = "at+jwt") -> dict[str, Any]:
    out: dict[str, Any] = {"alg": alg}
    if kid is not None:
        out["kid"] = kid
    if typ is not None:
        out["typ"] = typ
    return out
