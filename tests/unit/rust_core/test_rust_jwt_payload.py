"""SRS-030/031 for the bytes surface: ``sign_payload`` signs JSON bytes, ``verify_payload`` returns them.

``verify_payload`` must be ``verify`` with another return type: the same checks, the same exception
for every bad token, and on success the payload exactly as it was signed.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import rust_core_helpers as h
from hypothesis import given, settings
from hypothesis import strategies as st

from py_app import _rust_core as rc

ALGS = ["HS256", "HS384", "HS512", "EdDSA"]


class Claims(msgspec.Struct, frozen=True):
    iss: str
    sub: str
    aud: str
    iat: int
    exp: int
    jti: str
    sid: str
    role: str


def _outcome(call: Any) -> object:
    try:
        return call()
    except rc.TokenError as exc:
        return type(exc)


@pytest.mark.req("SRS-030")
@pytest.mark.parametrize("alg", ALGS)
def test_struct_bytes_round_trip_and_match_the_dict_surface(alg: str) -> None:
    claims = Claims(**h.claims())
    payload = msgspec.json.encode(claims)
    token = h.signer(alg).sign_payload(payload, typ="at+jwt")
    # Both HMAC and Ed25519 signatures are deterministic, so the same JSON gives the same token.
    assert token == h.signer(alg).sign(h.claims(), typ="at+jwt")
    assert json.loads(h.unb64(token.split(".")[0])) == {"alg": alg, "kid": "k1", "typ": "at+jwt"}
    verified = h.verifier(alg).verify_payload(token, h.NOW)
    assert verified == payload
    assert msgspec.json.decode(verified, type=Claims) == claims
    assert json.loads(h.unb64(h.signer(alg).sign_payload(b'{"a":1}').split(".")[0]))["typ"] == "JWT"


BAD_TOKENS = {
    "expired": h.access_token(exp=h.NOW - 31),
    "immature": h.access_token(nbf=h.NOW + 31),
    "issuer": h.access_token(iss="https://evil.test"),
    "audience": h.access_token(aud=["x", "y"]),
    "no exp": h.access_token(exp=...),
    "typ": h.signer().sign(h.claims(), typ="JWT"),
    "alg": h.access_token("HS384"),
    "kid": h.access_token(kid="k2"),
    "signature": h.forge(h.header(), h.claims(), key=b"q" * 32),
    "duplicate claim": h.forge(h.header(), b'{"exp":2000000000,"exp":1}'),
    "wrong-type claim": h.forge(h.header(), h.claims(sub=5)),
    "not an object": h.forge(h.header(), b"[1]"),
    "alg none": h.forge({"alg": "none", "kid": "k1", "typ": "at+jwt"}, h.claims()),
    "padding": h.access_token() + "=",
    "oversized": "a" * 9000,
}


@pytest.mark.req("SRS-031")
@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_every_failure_is_the_one_verify_raises(case: str) -> None:
    v = h.verifier()
    token = BAD_TOKENS[case]
    expected = _outcome(lambda: v.verify(token, h.NOW))
    assert isinstance(expected, type)
    assert issubclass(expected, rc.TokenError)
    assert _outcome(lambda: v.verify_payload(token, h.NOW)) is expected


@pytest.mark.req("SRS-031")
@settings(max_examples=200, deadline=None, database=None)
@given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgw_-.=+/x"))
def test_tampered_tokens_fail_alike(position: int, replacement: str) -> None:
    token = h.access_token()
    i = position % len(token)
    tampered = token[:i] + replacement + token[i + 1 :]
    v = h.verifier()
    plain = _outcome(lambda: v.verify(tampered, h.NOW))
    raw = _outcome(lambda: v.verify_payload(tampered, h.NOW))
    if isinstance(plain, dict):
        assert isinstance(raw, bytes)
        assert json.loads(raw) == plain
    else:
        assert raw is plain
