"""SRS-033: interoperability with PyJWT in both directions, and RFC 7515 / RFC 8037 vectors."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from py_app import _rust_core as rc
from tests.unit.rust_core import rust_core_helpers as h

ALGS = ["HS256", "HS384", "HS512", "EdDSA"]


def pyjwt_sign_key(alg: str) -> object:
    return Ed25519PrivateKey.from_private_bytes(h.ED_SEED) if alg == "EdDSA" else h.SECRETS[alg]


def pyjwt_verify_key(alg: str) -> Any:
    return Ed25519PublicKey.from_public_bytes(h.ed_public()) if alg == "EdDSA" else h.SECRETS[alg]


@pytest.mark.req("SRS-033")
@pytest.mark.parametrize("alg", ALGS)
def test_rust_signed_tokens_verify_with_pyjwt(alg: str) -> None:
    now = int(time.time())
    signer = h.signer(alg, kid="k1")
    access = signer.sign_access(
        iss=h.ISSUER, sub="u1", aud=h.AUDIENCE, iat=now, exp=now + 600, jti="j1", sid="s1", role="user"
    )
    generic = signer.sign(h.claims(iat=now, exp=now + 600, extra={"n": [1, 2.5, None, True, "é"]}))
    for token in (access, generic):
        decoded = jwt.decode(
            token,
            pyjwt_verify_key(alg),
            algorithms=[alg],
            audience=h.AUDIENCE,
            issuer=h.ISSUER,
        )
        assert decoded["exp"] == now + 600
        assert jwt.get_unverified_header(token)["kid"] == "k1"
    assert jwt.decode(generic, pyjwt_verify_key(alg), algorithms=[alg], audience=h.AUDIENCE)["extra"] == {
        "n": [1, 2.5, None, True, "é"]
    }


@pytest.mark.req("SRS-033")
@pytest.mark.parametrize("alg", ALGS)
def test_pyjwt_signed_tokens_verify_with_rust(alg: str) -> None:
    body = h.claims(extra={"unicode": "ü\u2028", "nested": {"a": [1, None]}})
    token = jwt.encode(body, pyjwt_sign_key(alg), algorithm=alg, headers={"kid": "k1", "typ": "at+jwt"})  # type: ignore[arg-type]
    v = h.verifier(alg)
    assert v.verify(token, h.NOW) == body
    assert v.verify_access(token, h.NOW) == ("user-1", "sid-1", "user", "jti-1", h.NOW + 900)
    # PyJWT's default header (typ JWT, no kid) with a single-key verifier configured for typ JWT.
    plain = jwt.encode(body, pyjwt_sign_key(alg), algorithm=alg)  # type: ignore[arg-type]
    assert h.verifier(alg, typ="JWT").verify(plain, h.NOW) == body


@pytest.mark.req("SRS-033")
def test_rfc7515_a1_hs256_vector() -> None:
    vec = h.VECTORS["rfc7515_a1"]
    token = vec["token"]
    assert h.unb64(token.split(".")[0]).decode() == vec["header_json"]
    key = h.unb64(vec["jwk_k"])
    # No kid in the vector: a single-key ring accepts it. It has no aud, so verification reaches
    # (and stops at) the audience step, which proves the signature, exp (now before exp) and iss passed.
    v = rc.TokenVerifier("HS256", {"any": key}, issuer="joe", audiences=["joe"], typ="JWT")
    with pytest.raises(rc.InvalidAudienceError):
        v.verify(token, vec["claims"]["exp"] - 100)
    with pytest.raises(rc.ExpiredTokenError):
        v.verify(token, vec["claims"]["exp"] + 31)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises((rc.InvalidSignatureError, rc.MalformedTokenError)):
        v.verify(tampered, vec["claims"]["exp"] - 100)
    # Same signature bytes as PyJWT computes over the vector's signing input.
    assert jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False}) == vec["claims"]


@pytest.mark.req("SRS-033")
def test_rfc8037_a4_ed25519_vector() -> None:
    vec = h.VECTORS["rfc8037_a4"]
    seed = h.unb64(vec["d"])
    signer = rc.TokenSigner("EdDSA", "rfc8037", seed)
    jwk = signer.public_jwk()
    assert jwk is not None
    assert jwk["x"] == vec["x"]
    token = f"{vec['signing_input']}.{vec['signature']}"
    # Ed25519 is deterministic: our key produces the RFC's signature (checked via cryptography) ...
    assert h.b64(Ed25519PrivateKey.from_private_bytes(seed).sign(vec["signing_input"].encode())) == vec["signature"]
    # ... and the verifier accepts it: the payload is plain text, so it stops after the signature step.
    v = rc.TokenVerifier("EdDSA", {"only": h.unb64(vec["x"])}, issuer="i", audiences=["a"], typ=None)
    with pytest.raises(rc.MalformedTokenError, match="payload is not valid JSON"):
        v.verify(token, h.NOW)
    flipped = vec["signature"][:10] + ("A" if vec["signature"][10] != "A" else "B") + vec["signature"][11:]
    with pytest.raises(rc.InvalidSignatureError):
        v.verify(f"{vec['signing_input']}.{flipped}", h.NOW)
