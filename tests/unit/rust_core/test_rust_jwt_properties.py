"""SRS-034: property tests: random claims round-trip; every single-byte tamper is rejected."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from py_app import _rust_core as rc
from tests.unit.rust_core import rust_core_helpers as h

RESERVED = {"iss", "sub", "aud", "iat", "exp", "nbf", "jti", "sid", "role"}
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
EXTRA = st.dictionaries(st.text(max_size=10).filter(lambda k: k not in RESERVED), JSON, max_size=6)
PROFILE = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.req("SRS-034")
@PROFILE
@given(extra=EXTRA, alg=st.sampled_from(["HS256", "HS384", "HS512", "EdDSA"]))
def test_random_claims_round_trip(extra: dict[str, Any], alg: str) -> None:
    body = {**h.claims(), **extra}
    token = h.signer(alg).sign(body, typ="at+jwt")
    assert h.verifier(alg).verify(token, h.NOW) == body


def _tamper_all_positions(token: str, v: rc.TokenVerifier, pick: st.DataObject | None) -> None:
    for i, original in enumerate(token):
        candidates = [c for c in BASE64URL + ".=+/" if c != original]
        replacement = pick.draw(st.sampled_from(candidates)) if pick is not None else candidates[i % len(candidates)]
        tampered = token[:i] + replacement + token[i + 1 :]
        with pytest.raises(rc.TokenError):
            v.verify(tampered, h.NOW)


@pytest.mark.req("SRS-034")
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "EdDSA"])
def test_every_single_byte_tamper_is_rejected(alg: str) -> None:
    token = h.access_token(alg)
    assert 200 <= len(token) <= 420
    v = h.verifier(alg)
    assert v.verify(token, h.NOW)["sub"] == "user-1"
    for i, original in enumerate(token):
        for replacement in {BASE64URL[(BASE64URL.find(original) + 1) % 64], "A", "_", ".", "="} - {original}:
            with pytest.raises(rc.TokenError):
                v.verify(token[:i] + replacement + token[i + 1 :], h.NOW)


@pytest.mark.req("SRS-034")
@settings(max_examples=20, deadline=None, database=None)
@given(data=st.data(), extra=EXTRA)
def test_every_position_tampered_with_random_byte(data: st.DataObject, extra: dict[str, Any]) -> None:
    token = h.signer("HS256").sign({**h.claims(), **extra}, typ="at+jwt")
    _tamper_all_positions(token, h.verifier("HS256", max_token_bytes=1 << 16), data)
