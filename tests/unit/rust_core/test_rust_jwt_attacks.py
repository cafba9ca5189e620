"""SRS-032: named attack cases against TokenVerifier, each mapped to its exception."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from py_app import _rust_core as rc
from tests.unit.rust_core import rust_core_helpers as h


@pytest.mark.req("SRS-032")
def test_attack_alg_none() -> None:
    none_header = h.b64(b'{"alg":"none","typ":"at+jwt"}')
    unsigned = f"{none_header}.{h.b64(b'{}')}."
    for token in (unsigned, h.forge({"alg": "none", "kid": "k1", "typ": "at+jwt"}, h.claims())):
        with pytest.raises(rc.InvalidAlgorithmError):
            h.verifier().verify(token, h.NOW)
        with pytest.raises(rc.InvalidAlgorithmError):
            h.verifier("EdDSA").verify(token, h.NOW)
    for alg in ("None", "NONE", "hs256", ""):
        with pytest.raises(rc.InvalidAlgorithmError):
            h.verifier().verify(h.forge(h.header(alg), h.claims()), h.NOW)
    with pytest.raises(rc.InvalidAlgorithmError):  # alg missing
        h.verifier().verify(h.forge({"kid": "k1", "typ": "at+jwt"}, h.claims()), h.NOW)


@pytest.mark.req("SRS-032")
def test_attack_alg_switched_to_hs256_with_ed25519_public_key_as_secret() -> None:
    public = h.ed_public()
    forged = h.forge(h.header("HS256"), h.claims(role="admin"), alg="HS256", key=public)
    with pytest.raises(rc.InvalidAlgorithmError):
        h.verifier("EdDSA").verify(forged, h.NOW)
    with pytest.raises(rc.InvalidAlgorithmError):
        h.verifier("EdDSA").verify_access(forged, h.NOW)


@pytest.mark.req("SRS-032")
def test_attack_unknown_kid() -> None:
    for kid in ("k2", "", "../../k1", "k1\x00"):
        with pytest.raises(rc.UnknownKeyError):
            h.verifier().verify(h.forge(h.header(kid=kid), h.claims()), h.NOW)


@pytest.mark.req("SRS-032")
@pytest.mark.parametrize("raw", [b"not json", b"", b"[1,2]", b'"alg"', b"null", b'{"alg":"HS256"', b"\xff\xfe"])
def test_attack_header_not_json_or_not_object(raw: bytes) -> None:
    with pytest.raises(rc.MalformedTokenError):
        h.verifier().verify(h.forge(raw, h.claims()), h.NOW)


@pytest.mark.req("SRS-032")
@pytest.mark.parametrize("raw", [b"not json", b"", b"[1,2]", b"42", b"null", b'{"exp":1', b'{"a":1} {}', b"\xff"])
def test_attack_payload_not_json_or_not_object(raw: bytes) -> None:
    with pytest.raises(rc.MalformedTokenError):
        h.verifier().verify(h.forge(h.header(), raw), h.NOW)


@pytest.mark.req("SRS-032")
def test_attack_duplicate_claims() -> None:
    body = b'{"iss":"%s","aud":"%s","sub":"a","exp":1,"exp":%d}' % (
        h.ISSUER.encode(),
        h.AUDIENCE.encode(),
        h.NOW + 900,
    )
    with pytest.raises(rc.MalformedTokenError, match="duplicate"):
        h.verifier().verify(h.forge(h.header(), body), h.NOW)
    escaped = b'{"iss":"%s","aud":"%s","exp":%d,"sub":"a","s\\u0075b":"admin"}' % (
        h.ISSUER.encode(),
        h.AUDIENCE.encode(),
        h.NOW + 900,
    )
    with pytest.raises(rc.MalformedTokenError, match="duplicate"):
        h.verifier().verify(h.forge(h.header(), escaped), h.NOW)
    dup_header = b'{"alg":"HS256","kid":"k1","typ":"at+jwt","alg":"none"}'
    with pytest.raises(rc.MalformedTokenError, match="duplicate"):
        h.verifier().verify(h.forge(dup_header, h.claims()), h.NOW)


@pytest.mark.req("SRS-032")
@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": str(h.NOW + 900)},
        {"exp": True},
        {"exp": None},
        {"nbf": "0"},
        {"iat": [h.NOW]},
        {"iss": 1},
        {"sub": 123},
        {"jti": None},
        {"sid": {"a": 1}},
        {"aud": 7},
        {"aud": [h.AUDIENCE, 7]},
    ],
)
def test_attack_wrong_type_claims(overrides: dict[str, object]) -> None:
    with pytest.raises(rc.MalformedTokenError):
        h.verifier().verify(h.forge(h.header(), h.claims(**overrides)), h.NOW)


@pytest.mark.req("SRS-032")
@pytest.mark.parametrize("header", [{"alg": "HS256", "kid": 1}, {"alg": "HS256", "typ": 1}, {"alg": ["HS256"]}])
def test_attack_wrong_type_header_members(header: dict[str, object]) -> None:
    with pytest.raises(rc.MalformedTokenError):
        h.verifier().verify(h.forge(header, h.claims()), h.NOW)


@pytest.mark.req("SRS-032")
def test_attack_crit_header_is_refused() -> None:
    with pytest.raises(rc.MalformedTokenError, match="crit"):
        h.verifier().verify(h.forge({**h.header(), "crit": ["exp"], "exp": 1}, h.claims()), h.NOW)


@pytest.mark.req("SRS-032")
@pytest.mark.parametrize("alg", ["HS256", "EdDSA"])
def test_attack_signature_of_wrong_length(alg: str) -> None:
    token = h.access_token(alg)
    head, body, sig = token.split(".")
    raw = h.unb64(sig)
    for wrong in (raw[:-1], raw + b"\x00", raw[: len(raw) // 2], b"", raw * 2):
        with pytest.raises(rc.InvalidSignatureError):
            h.verifier(alg).verify(f"{head}.{body}.{h.b64(wrong)}", h.NOW)
    # A truncated HMAC that happens to be a correct prefix is still rejected.
    full = hmac.new(h.SECRETS["HS256"], f"{head}.{body}".encode(), hashlib.sha256).digest()
    if alg == "HS256":
        with pytest.raises(rc.InvalidSignatureError):
            h.verifier().verify(f"{head}.{body}.{h.b64(full[:16])}", h.NOW)


@pytest.mark.req("SRS-032")
def test_attack_base64_padding() -> None:
    head, body, sig = h.access_token().split(".")
    for padded in (
        f"{head}=.{body}.{sig}",
        f"{head}.{body}==.{sig}",
        f"{head}.{body}.{sig}=",
        f"{head}.{body}.{sig}==",
    ):
        with pytest.raises(rc.MalformedTokenError, match="base64"):
            h.verifier().verify(padded, h.NOW)


@pytest.mark.req("SRS-032")
def test_attack_non_url_alphabet() -> None:
    # A signature whose standard-alphabet form contains '+' or '/'.
    for i in range(200):
        token = h.access_token(jti=f"j{i}")
        head, body, sig = token.split(".")
        std = sig.replace("-", "+").replace("_", "/")
        if std != sig:
            break
    else:
        pytest.fail("no signature with - or _ found")
    with pytest.raises(rc.MalformedTokenError, match="base64"):
        h.verifier().verify(f"{head}.{body}.{std}", h.NOW)
    for bad in ("+", "/", " ", "\n", "é"):
        with pytest.raises(rc.MalformedTokenError):
            h.verifier().verify(f"{head}{bad}.{body}.{sig}", h.NOW)
    # Non-canonical trailing bits (same decoded bytes) are refused as well.
    last = sig[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(rc.MalformedTokenError):
        h.verifier().verify(f"{head}.{body}.{sig[:-1]}{sibling}", h.NOW)


@pytest.mark.req("SRS-032")
def test_attack_two_megabyte_token_rejected_fast() -> None:
    v = h.verifier()
    good = h.access_token()
    huge_ascii = good + "A" * (2 * 1024 * 1024)
    huge_unicode = "é" * (2 * 1024 * 1024)
    huge_dots = "." * (2 * 1024 * 1024)
    # "size limit" is the first check's message: no decoding or parsing happened before it.
    for huge in (huge_ascii, huge_unicode, huge_dots):
        with pytest.raises(rc.MalformedTokenError, match="size limit"):
            v.verify(huge, h.NOW)
    # Just under the limit a token is processed normally; one byte over is not.
    limit = len(good)
    assert h.verifier(max_token_bytes=limit).verify(good, h.NOW)["sub"] == "user-1"
    with pytest.raises(rc.MalformedTokenError, match="size limit"):
        h.verifier(max_token_bytes=limit - 1).verify(good, h.NOW)


@pytest.mark.req("SRS-032")
def test_attack_expired_by_one_second_beyond_leeway() -> None:
    exp = h.NOW
    token = h.access_token(exp=exp, iat=exp - 900)
    v = h.verifier(leeway=30)
    with pytest.raises(rc.ExpiredTokenError):
        v.verify_access(token, exp + 30 + 1)
    assert v.verify_access(token, exp + 29)[4] == exp


@pytest.mark.req("SRS-032")
def test_attack_extra_dots_and_empty_parts() -> None:
    head, body, sig = h.access_token().split(".")
    for token in (f"{head}.{body}.{sig}.", f"{head}.{body}", f".{body}.{sig}", "..", ""):
        with pytest.raises(rc.MalformedTokenError):
            h.verifier().verify(token, h.NOW)
    # An empty payload is valid compact form: it fails at the signature step (this one is not for it).
    with pytest.raises(rc.InvalidSignatureError):
        h.verifier().verify(f"{head}..{sig}", h.NOW)
