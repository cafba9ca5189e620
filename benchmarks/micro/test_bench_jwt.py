"""Rust TokenSigner/TokenVerifier vs PyJWT: sign and verify one typical access token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from py_app import _rust_core as rc

NOW = 1_700_000_000
ISS, AUD = "https://arcana.example", "arcana-api"
SECRET = b"k" * 64
SEED = bytes(range(32))
PRIV = Ed25519PrivateKey.from_private_bytes(SEED)
PUB = PRIV.public_key()
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

PUB_RAW = PUB.public_bytes(Encoding.Raw, PublicFormat.Raw)
CLAIMS: dict[str, Any] = {
    "iss": ISS,
    "sub": "0b9c2d4e-8f1a-4c3b-9e7d-1a2b3c4d5e6f",
    "aud": AUD,
    "iat": NOW,
    "exp": NOW + 900,
    "jti": "5f0c7a1e-3d2b-4e8f-9a6c-7b1d2e3f4a5b",
    "sid": "9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b",
    "role": "user",
}
KEYS = {"HS256": (SECRET, SECRET), "EdDSA": (SEED, PUB_RAW)}
PYJWT_KEYS: dict[str, tuple[Any, Any]] = {"HS256": (SECRET, SECRET), "EdDSA": (PRIV, PUB)}


def rust_signer(alg: str) -> rc.TokenSigner:
    return rc.TokenSigner(alg, "k1", KEYS[alg][0])


def rust_verifier(alg: str) -> rc.TokenVerifier:
    return rc.TokenVerifier(alg, {"k1": KEYS[alg][1]}, issuer=ISS, audiences=[AUD])


def sign_fn(alg: str, impl: str) -> Callable[[], str]:
    if impl == "rust":
        s = rust_signer(alg)
        return lambda: s.sign_access(**CLAIMS)
    if impl == "rust-generic":
        s = rust_signer(alg)
        return lambda: s.sign(CLAIMS, typ="at+jwt")
    key = PYJWT_KEYS[alg][0]
    return lambda: jwt.encode(CLAIMS, key, algorithm=alg, headers={"kid": "k1", "typ": "at+jwt"})


def verify_fn(alg: str, impl: str) -> Callable[[], object]:
    token = rust_signer(alg).sign_access(**CLAIMS)
    if impl == "rust":
        v = rust_verifier(alg)
        return lambda: v.verify_access(token, NOW)
    if impl == "rust-generic":
        v = rust_verifier(alg)
        return lambda: v.verify(token, NOW)
    key = PYJWT_KEYS[alg][1]
    # PyJWT reads the wall clock; give it enough leeway that the fixed-iat token is valid.
    options = {"require": ["exp", "iat", "iss", "aud", "sub", "jti"]}
    return lambda: jwt.decode(
        token,
        key,
        algorithms=[alg],
        audience=AUD,
        issuer=ISS,
        options=cast(Any, options),
        leeway=10**10,
    )


@pytest.mark.parametrize("impl", ["rust", "rust-generic", "pyjwt"])
@pytest.mark.parametrize("alg", ["HS256", "EdDSA"])
def test_jwt_sign(benchmark: Any, alg: str, impl: str) -> None:
    benchmark.group = f"jwt sign {alg}"
    fn = sign_fn(alg, impl)
    assert rust_verifier(alg).verify_access(fn(), NOW)[0] == CLAIMS["sub"]
    benchmark(fn)


@pytest.mark.parametrize("impl", ["rust", "rust-generic", "pyjwt"])
@pytest.mark.parametrize("alg", ["HS256", "EdDSA"])
def test_jwt_verify(benchmark: Any, alg: str, impl: str) -> None:
    benchmark.group = f"jwt verify {alg}"
    fn = verify_fn(alg, impl)
    fn()
    benchmark(fn)
