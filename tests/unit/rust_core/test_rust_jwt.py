"""SRS-030 signing/verification and SRS-031 verification order, one exception per failure."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from py_app import _rust_core as rc
from tests.unit.rust_core import rust_core_helpers as h

ALGS = ["HS256", "HS384", "HS512", "EdDSA"]


@pytest.mark.req("SRS-030")
@pytest.mark.parametrize("alg", ALGS)
def test_sign_and_verify_every_algorithm_with_kid_and_typ(alg: str) -> None:
    signer = h.signer(alg, kid="key-2026")
    token = signer.sign_access(
        iss=h.ISSUER, sub="u1", aud=h.AUDIENCE, iat=h.NOW, exp=h.NOW + 900, jti="j1", sid="s1", role="admin"
    )
    header = json.loads(h.unb64(token.split(".")[0]))
    assert header == {"alg": alg, "kid": "key-2026", "typ": "at+jwt"}
    verifier = h.verifier(alg, kids=("key-2026",))
    assert verifier.verify_access(token, h.NOW) == ("u1", "s1", "admin", "j1", h.NOW + 900)
    assert verifier.verify(token, h.NOW) == {
        "iss": h.ISSUER,
        "sub": "u1",
        "aud": h.AUDIENCE,
        "iat": h.NOW,
        "exp": h.NOW + 900,
        "jti": "j1",
        "sid": "s1",
        "role": "admin",
    }
    assert signer.alg == alg
    assert signer.kid == "key-2026"


@pytest.mark.req("SRS-030")
def test_generic_claims_and_custom_typ() -> None:
    body = h.claims(scope=["read", "write"], extra={"n": None, "f": 1.5, "ok": True, "t": ("a", 1)})
    token = h.signer().sign(body)
    assert json.loads(h.unb64(token.split(".")[0]))["typ"] == "JWT"
    got = h.verifier(typ="JWT").verify(token, h.NOW)
    assert got == {**body, "extra": {"n": None, "f": 1.5, "ok": True, "t": ["a", 1]}}
    with pytest.raises(TypeError):
        h.signer().sign({"exp": object()})


@pytest.mark.req("SRS-030")
@pytest.mark.parametrize("alg", ALGS)
def test_key_ring_with_several_kids_verifies_any(alg: str) -> None:
    keys = {"old": h.verify_key(alg), "new": h.verify_key(alg)}
    if alg == "EdDSA":
        keys["other"] = h.ed_public(b"\x09" * 32)
        other_signer = rc.TokenSigner("EdDSA", "other", b"\x09" * 32)
    else:
        keys["other"] = b"o" * 64
        other_signer = rc.TokenSigner(alg, "other", b"o" * 64)
    ring = rc.TokenVerifier(alg, keys, issuer=h.ISSUER, audiences=[h.AUDIENCE])
    for kid in ("old", "new"):
        assert ring.verify_access(h.access_token(alg, kid=kid), h.NOW)[0] == "user-1"
    assert ring.verify_access(other_signer.sign(h.claims(), typ="at+jwt"), h.NOW)[0] == "user-1"
    # A header without kid is ambiguous with several keys.
    no_kid = h.forge(h.header(alg, kid=None), h.claims(), alg=alg)
    with pytest.raises(rc.UnknownKeyError):
        ring.verify(no_kid, h.NOW)


@pytest.mark.req("SRS-030")
def test_single_key_accepts_header_without_kid() -> None:
    token = h.forge(h.header(kid=None), h.claims())
    assert h.verifier().verify(token, h.NOW)["sub"] == "user-1"


@pytest.mark.req("SRS-030")
def test_jwks_export() -> None:
    signer = h.signer("EdDSA", kid="ed-1")
    jwk = signer.public_jwk()
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": h.b64(h.ed_public()),
        "kid": "ed-1",
        "alg": "EdDSA",
        "use": "sig",
    }
    ring = rc.TokenVerifier(
        "EdDSA", {"ed-2": h.ed_public(b"\x05" * 32), "ed-1": h.ed_public()}, issuer=h.ISSUER, audiences=[h.AUDIENCE]
    )
    doc = json.loads(ring.jwks())
    assert [k["kid"] for k in doc["keys"]] == ["ed-1", "ed-2"]
    assert doc["keys"][0] == jwk
    assert h.signer("HS256").public_jwk() is None
    assert h.verifier("HS256").jwks() == '{"keys":[]}'


@pytest.mark.req("SRS-030")
def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        rc.TokenSigner("HS256", "k", b"x" * 31)
    with pytest.raises(ValueError, match="unsupported algorithm"):
        rc.TokenSigner("none", "k", b"x" * 32)
    with pytest.raises(ValueError, match="unsupported algorithm"):
        rc.TokenSigner("RS256", "k", b"x" * 32)
    with pytest.raises(ValueError, match="32 bytes"):
        rc.TokenSigner("EdDSA", "k", b"x" * 64)
    with pytest.raises(ValueError, match="at least one key"):
        rc.TokenVerifier("HS256", {}, issuer="i", audiences=["a"])
    with pytest.raises(ValueError, match="at least 32"):
        rc.TokenVerifier("HS256", {"k": b"x" * 16}, issuer="i", audiences=["a"])
    with pytest.raises(ValueError, match="Ed25519 public key"):
        rc.TokenVerifier("EdDSA", {"k": b"\x00" * 32}, issuer="i", audiences=["a"])  # small-order point
    with pytest.raises(ValueError, match="audience"):
        rc.TokenVerifier("HS256", {"k": b"x" * 32}, issuer="i", audiences=[])
    with pytest.raises(ValueError, match="leeway"):
        rc.TokenVerifier("HS256", {"k": b"x" * 32}, issuer="i", audiences=["a"], leeway=-1)
    with pytest.raises(AttributeError):
        h.signer().kid = "other"  # type: ignore[misc]


# --- SRS-031: one exception per failure, in the documented order ---------------------------


@pytest.mark.req("SRS-031")
def test_exception_hierarchy() -> None:
    token_errors = [
        rc.MalformedTokenError,
        rc.InvalidAlgorithmError,
        rc.UnknownKeyError,
        rc.InvalidSignatureError,
        rc.ExpiredTokenError,
        rc.ImmatureTokenError,
        rc.InvalidIssuerError,
        rc.InvalidAudienceError,
        rc.InvalidTypeError,
    ]
    assert len(set(token_errors)) == 9
    for exc in token_errors:
        assert issubclass(exc, rc.TokenError)
        assert exc.__module__ == "py_app._rust_core"
    for core in (rc.TokenError, rc.PasswordHashError, rc.PasswordTooLongError):
        assert issubclass(core, rc.CoreError)
    assert issubclass(rc.CoreError, ValueError)


@pytest.mark.req("SRS-031")
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"exp": h.NOW - 31}, rc.ExpiredTokenError),
        ({"nbf": h.NOW + 31}, rc.ImmatureTokenError),
        ({"iat": h.NOW + 31}, rc.ImmatureTokenError),
        ({"iss": "https://evil.test"}, rc.InvalidIssuerError),
        ({"iss": ...}, rc.InvalidIssuerError),
        ({"aud": "other"}, rc.InvalidAudienceError),
        ({"aud": ["x", "y"]}, rc.InvalidAudienceError),
        ({"aud": ...}, rc.InvalidAudienceError),
        ({"exp": ...}, rc.MalformedTokenError),
    ],
)
def test_claim_failures_raise_distinct_errors(overrides: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        h.verifier().verify(h.access_token(**overrides), h.NOW)


@pytest.mark.req("SRS-031")
def test_signature_alg_kid_typ_failures() -> None:
    good = h.access_token()
    with pytest.raises(rc.InvalidSignatureError):
        h.verifier().verify(good[:-2] + ("AA" if good[-2:] != "AA" else "BA"), h.NOW)
    with pytest.raises(rc.InvalidSignatureError):
        rc.TokenVerifier("HS256", {"k1": b"z" * 32}, issuer=h.ISSUER, audiences=[h.AUDIENCE]).verify(good, h.NOW)
    with pytest.raises(rc.InvalidAlgorithmError):
        h.verifier("HS384").verify(good, h.NOW)
    with pytest.raises(rc.UnknownKeyError):
        h.verifier(kids=("k2",)).verify(good, h.NOW)
    with pytest.raises(rc.MalformedTokenError):
        h.verifier().verify("not-a-token", h.NOW)
    jwt_typ = h.signer().sign(h.claims(), typ="JWT")
    with pytest.raises(rc.InvalidTypeError):
        h.verifier().verify(jwt_typ, h.NOW)
    no_typ = h.forge(h.header(typ=None), h.claims())
    with pytest.raises(rc.InvalidTypeError):
        h.verifier().verify(no_typ, h.NOW)
    assert h.verifier(typ=None).verify(no_typ, h.NOW)["sub"] == "user-1"
    assert h.verifier(typ="JWT").verify(jwt_typ, h.NOW)["sub"] == "user-1"


@pytest.mark.req("SRS-031")
def test_typ_is_case_insensitive_with_optional_application_prefix() -> None:
    for typ in ("AT+JWT", "application/at+jwt", "Application/At+Jwt"):
        token = h.signer().sign(h.claims(), typ=typ)
        assert h.verifier().verify(token, h.NOW)["sub"] == "user-1"
    with pytest.raises(rc.InvalidTypeError):
        h.verifier().verify(h.signer().sign(h.claims(), typ="at+jwt2"), h.NOW)


@pytest.mark.req("SRS-031")
def test_leeway_boundaries_follow_pyjwt() -> None:
    """Expired when exp <= now - leeway; immature when nbf/iat > now + leeway (PyJWT's rules)."""
    exp = h.NOW
    token = h.access_token(exp=exp, iat=exp - 60)
    v = h.verifier(leeway=30)
    assert v.verify_access(token, exp + 29)[4] == exp
    with pytest.raises(rc.ExpiredTokenError):
        v.verify_access(token, exp + 30)
    strict = h.verifier(leeway=0)
    assert strict.verify_access(token, exp - 1)[4] == exp
    with pytest.raises(rc.ExpiredTokenError):
        strict.verify_access(token, exp)
    nbf = h.access_token(nbf=h.NOW + 30)
    assert v.verify(nbf, h.NOW)["nbf"] == h.NOW + 30
    with pytest.raises(rc.ImmatureTokenError):
        strict.verify(nbf, h.NOW)


@pytest.mark.req("SRS-031")
def test_now_argument_is_the_clock() -> None:
    token = h.access_token(iat=1000, exp=2000)
    v = h.verifier(leeway=0)
    assert v.verify(token, 1500)["exp"] == 2000
    with pytest.raises(rc.ExpiredTokenError):
        v.verify(token, 2000)
    with pytest.raises(rc.ImmatureTokenError):
        v.verify(token, 500)


@pytest.mark.req("SRS-031")
def test_verification_order() -> None:
    v = h.verifier()
    # Oversized beats everything.
    with pytest.raises(rc.MalformedTokenError):
        h.verifier(max_token_bytes=50).verify(h.access_token(alg="HS384"), h.NOW)
    # Wrong alg beats unknown kid and bad signature.
    with pytest.raises(rc.InvalidAlgorithmError):
        v.verify(h.forge(h.header("HS512", kid="nope"), h.claims(), alg="HS512"), h.NOW)
    # Unknown kid beats bad signature.
    with pytest.raises(rc.UnknownKeyError):
        v.verify(h.forge(h.header(kid="nope"), h.claims(), key=b"q" * 32), h.NOW)
    # Bad signature beats malformed payload, expiry, issuer, audience and typ.
    bad = h.forge(h.header(typ="JWT"), b"not json", key=b"q" * 32)
    with pytest.raises(rc.InvalidSignatureError):
        v.verify(bad, h.NOW)
    bad = h.forge(h.header(typ="JWT"), h.claims(exp=1, iss="x", aud="y"), key=b"q" * 32)
    with pytest.raises(rc.InvalidSignatureError):
        v.verify(bad, h.NOW)
    # Claim types before times; expiry before issuer; issuer before audience; audience before typ.
    with pytest.raises(rc.MalformedTokenError):
        v.verify(h.forge(h.header(), h.claims(exp=1, sub=5)), h.NOW)
    with pytest.raises(rc.ExpiredTokenError):
        v.verify(h.forge(h.header(typ="JWT"), h.claims(exp=1, iss="x", aud="y")), h.NOW)
    with pytest.raises(rc.InvalidIssuerError):
        v.verify(h.forge(h.header(typ="JWT"), h.claims(iss="x", aud="y")), h.NOW)
    with pytest.raises(rc.InvalidAudienceError):
        v.verify(h.forge(h.header(typ="JWT"), h.claims(aud="y")), h.NOW)


@pytest.mark.req("SRS-031")
def test_audience_allowlist_and_list_form() -> None:
    v = h.verifier(audiences=["a", "b"])
    assert v.verify(h.access_token(aud=["x", "b"]), h.NOW)["aud"] == ["x", "b"]
    assert v.verify(h.access_token(aud="a"), h.NOW)["aud"] == "a"
    with pytest.raises(rc.InvalidAudienceError):
        v.verify(h.access_token(aud=[]), h.NOW)


@pytest.mark.req("SRS-031")
@pytest.mark.parametrize("missing", ["sub", "sid", "role", "jti"])
def test_verify_access_requires_its_claims(missing: str) -> None:
    token = h.access_token(**{missing: cast(Any, ...)})
    assert missing not in h.verifier().verify(token, h.NOW)
    with pytest.raises(rc.MalformedTokenError):
        h.verifier().verify_access(token, h.NOW)
    with pytest.raises(rc.MalformedTokenError):
        h.verifier().verify_access(h.access_token(role=1), h.NOW)
