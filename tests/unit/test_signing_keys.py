"""Signing keys: the ring's lifecycle, and the token adapter as the key ring changes under it (no I/O)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import jwt
import pytest

from py_app.core.errors import Unauthenticated
from py_app.infra.keys import KeyRing, KeyRingError, KeyState, RingKey, decode_ring, encode_ring, new_key, secret_ring
from py_app.infra.security import LEEWAY_SECONDS, JwtAccessTokens

T0 = 1_800_000_000
TTL = 900
DELAY = 660  # the default: one JWKS max-age (600 s) and a minute
VERIFY_FOR = TTL + LEEWAY_SECONDS + 5  # the access-token lifetime, leeway and one check interval
SECRET = b"unit-suite-signing-secret-0123456789abcdef"


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def first_ring(now: int = T0) -> KeyRing:
    return KeyRing("EdDSA", (new_key("EdDSA", now),))


def adapter(ring: KeyRing, now: int = T0) -> JwtAccessTokens:
    return JwtAccessTokens(ring, issuer="arcana", audience="arcana", ttl=TTL, now=now)


def issue(tokens: JwtAccessTokens, now: int) -> str:
    return tokens.issue(user_id="user-1", session_id="session-1", role="user", now=at(now))


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def published(tokens: JwtAccessTokens) -> dict[str, dict[str, str]]:
    return {key["kid"]: key for key in json.loads(tokens.published().jwks)["keys"]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.req("SRS-109")
def test_a_rotated_key_is_published_first_signs_later_and_the_old_one_retires_after_its_tokens_expire() -> None:
    old = first_ring()
    new = new_key("EdDSA", T0 + 100, T0 + 100 + DELAY)
    ring = old.rotated(new, T0 + 100, verify_for=VERIFY_FOR)
    previous = ring.keys[0]
    switch, retire = T0 + 100 + DELAY, T0 + 100 + DELAY + VERIFY_FOR
    assert previous.retires_at == retire
    expected = {
        T0 + 100: (KeyState.ACTIVE, KeyState.PENDING),
        switch - 1: (KeyState.ACTIVE, KeyState.PENDING),
        switch: (KeyState.VERIFYING, KeyState.ACTIVE),
        retire - 1: (KeyState.VERIFYING, KeyState.ACTIVE),
        retire: (KeyState.RETIRED, KeyState.ACTIVE),
    }
    for now, states in expected.items():
        assert (ring.state(ring.keys[0], now), ring.state(ring.keys[1], now)) == states, now
    assert ring.signing_key(switch - 1).kid == previous.kid
    assert ring.signing_key(switch).kid == new.kid
    assert [key.kid for key in ring.verifying_keys(T0 + 100)] == [previous.kid, new.kid]  # pending keys verify
    assert [key.kid for key in ring.verifying_keys(retire)] == [new.kid]
    assert (ring.next_change(T0 + 100), ring.next_change(switch), ring.next_change(retire)) == (switch, retire, None)


@pytest.mark.req("SRS-109")
def test_the_next_rotation_drops_retired_keys_and_keeps_earlier_retirement_times() -> None:
    ring = first_ring().rotated(new_key("EdDSA", T0, T0), T0, verify_for=VERIFY_FOR)
    oldest, middle = ring.keys
    later = T0 + 60
    again = ring.rotated(new_key("EdDSA", later, later), later, verify_for=VERIFY_FOR)
    assert [(key.kid, key.retires_at) for key in again.keys[:2]] == [
        (oldest.kid, T0 + VERIFY_FOR),
        (middle.kid, later + VERIFY_FOR),
    ]
    after_retirement = T0 + VERIFY_FOR
    pruned = again.rotated(new_key("EdDSA", after_retirement, after_retirement), after_retirement, verify_for=1)
    assert oldest.kid not in {key.kid for key in pruned.keys}


@pytest.mark.req("SRS-109")
def test_rotation_refuses_a_second_waiting_key_and_retiring_without_a_signer() -> None:
    ring = first_ring().rotated(new_key("EdDSA", T0, T0 + DELAY), T0, verify_for=VERIFY_FOR)
    with pytest.raises(KeyRingError, match="already waits to sign from"):
        ring.rotated(new_key("EdDSA", T0 + 1, T0 + 1), T0 + 1, verify_for=VERIFY_FOR)
    with pytest.raises(KeyRingError, match="needs the new key to sign at once"):
        first_ring().rotated(new_key("EdDSA", T0, T0 + DELAY), T0, verify_for=VERIFY_FOR, retire_previous=True)


@pytest.mark.req("SRS-109")
def test_a_token_signed_before_rotation_verifies_after_it_and_fails_once_its_key_retires() -> None:
    ring = first_ring()
    tokens = adapter(ring)
    before = issue(tokens, T0)
    rotated = ring.rotated(new_key("EdDSA", T0 + 10, T0 + 10 + DELAY), T0 + 10, verify_for=VERIFY_FOR)
    old_kid, new_kid = (key.kid for key in rotated.keys)

    tokens.use(rotated, T0 + 10)  # published, not signing yet
    assert set(published(tokens)) == {old_kid, new_kid}
    assert kid_of(issue(tokens, T0 + 10)) == old_kid
    tokens.use(rotated, T0 + 10 + DELAY)  # signing
    after = issue(tokens, T0 + 10 + DELAY)
    assert kid_of(after) == new_kid
    assert tokens.verify(before, at(T0 + 10 + DELAY)).user_id == "user-1"

    tokens.use(rotated, T0 + 10 + DELAY + VERIFY_FOR)  # retired: refused even where its expiry would allow it
    assert set(published(tokens)) == {new_kid}
    with pytest.raises(Unauthenticated):
        tokens.verify(before, at(T0 + 1))
    assert tokens.verify(after, at(T0 + 10 + DELAY + 1)).session_id == "session-1"


@pytest.mark.req("SRS-109")
def test_retiring_the_previous_keys_at_once_refuses_their_tokens_at_once() -> None:
    ring = first_ring()
    tokens = adapter(ring)
    leaked = issue(tokens, T0)
    tokens.use(
        ring.rotated(new_key("EdDSA", T0 + 5, T0 + 5), T0 + 5, verify_for=VERIFY_FOR, retire_previous=True), T0 + 5
    )
    with pytest.raises(Unauthenticated):
        tokens.verify(leaked, at(T0 + 6))
    assert tokens.verify(issue(tokens, T0 + 6), at(T0 + 6)).role == "user"


@pytest.mark.req("SRS-108")
def test_eddsa_tokens_keep_their_shape_and_verify_with_pyjwt_from_the_published_key() -> None:
    tokens = adapter(first_ring())
    token = issue(tokens, T0)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": tokens.kid, "typ": "at+jwt"}
    jwks = jwt.PyJWKSet.from_dict(json.loads(tokens.published().jwks))
    claims = jwt.decode(
        token,
        jwks[tokens.kid].key,
        algorithms=["EdDSA"],
        audience="arcana",
        issuer="arcana",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "sid", "role"}
    assert (claims["sub"], claims["sid"], claims["role"], claims["exp"] - claims["iat"]) == (
        "user-1",
        "session-1",
        "user",
        TTL,
    )


@pytest.mark.req("SRS-108")
def test_the_published_key_is_an_ed25519_public_jwk_and_nothing_private() -> None:
    ring = first_ring()
    tokens = adapter(ring)
    assert tokens.published().max_age == 600
    (jwk,) = published(tokens).values()
    assert jwk == {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": ring.keys[0].kid, "alg": "EdDSA", "use": "sig"}
    assert len(base64.urlsafe_b64decode(jwk["x"] + "=")) == 32
    assert b64(ring.keys[0].material) not in tokens.published().jwks.decode()


@pytest.mark.req("SRS-108")
def test_hs256_is_what_it_was_one_key_named_by_its_digest_and_nothing_published() -> None:
    tokens = adapter(secret_ring(SECRET))
    token = issue(tokens, T0)
    assert jwt.get_unverified_header(token) == {
        "alg": "HS256",
        "kid": hashlib.sha256(SECRET).hexdigest()[:16],
        "typ": "at+jwt",
    }
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="arcana", options={"verify_exp": False, "verify_iat": False}
    )
    assert claims["sub"] == "user-1"
    assert json.loads(tokens.published().jwks) == {"keys": []}


def hs256_forgery(kid: str, secret: bytes, now: int = T0) -> str:
    header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "at+jwt"}).encode())
    claims = {"iss": "arcana", "sub": "admin-1", "aud": "arcana", "iat": now, "exp": now + TTL, "jti": "j"}
    payload = b64(json.dumps({**claims, "sid": "s", "role": "admin"}).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


@pytest.mark.req("SRS-108")
def test_an_hs256_token_signed_with_the_published_ed25519_key_as_secret_is_refused() -> None:
    tokens = adapter(first_ring())
    (jwk,) = published(tokens).values()
    public = base64.urlsafe_b64decode(jwk["x"] + "=")
    for secret in (public, jwk["x"].encode(), tokens.published().jwks, json.dumps(jwk).encode()):
        with pytest.raises(Unauthenticated):
            tokens.verify(hs256_forgery(jwk["kid"], secret), at(T0))


@pytest.mark.req("SDD-108")
def test_one_adapter_verifies_one_algorithm_whatever_ring_it_is_handed() -> None:
    tokens = adapter(first_ring())
    with pytest.raises(KeyRingError, match="restart"):
        tokens.use(secret_ring(SECRET), T0)
    hs = adapter(secret_ring(SECRET))
    with pytest.raises(KeyRingError):
        hs.use(first_ring(), T0)
    eddsa_token = issue(tokens, T0)
    with pytest.raises(Unauthenticated):
        hs.verify(eddsa_token, at(T0))


@pytest.mark.req("SDD-108")
def test_the_ring_file_round_trips_and_names_what_is_wrong_in_one_line() -> None:
    ring = first_ring().rotated(new_key("EdDSA", T0, T0 + DELAY), T0, verify_for=VERIFY_FOR)
    assert decode_ring(encode_ring(ring)) == ring
    document = json.loads(encode_ring(ring))
    key = document["keys"][0]
    broken = {
        "not json": b"{",
        "unknown format": json.dumps({**document, "format": "other/9"}).encode(),
        "no key": json.dumps({**document, "keys": []}).encode(),
        "mixed algorithms": json.dumps({**document, "keys": [key, {**key, "kid": "b", "alg": "HS256"}]}).encode(),
        "duplicate kid": json.dumps({**document, "keys": [key, key]}).encode(),
        "short seed": json.dumps({**document, "keys": [{**key, "private_key": b64(b"x" * 16)}]}).encode(),
        "time without zone": json.dumps({**document, "keys": [{**key, "created_at": "2027-01-01T00:00:00"}]}).encode(),
        "unknown field": json.dumps({**document, "keys": [{**key, "public": "x"}]}).encode(),
        "superseded key never retires": json.dumps(
            {**document, "keys": [{**key, "retires_at": None}, document["keys"][1]]}
        ).encode(),
    }
    for name, data in broken.items():
        with pytest.raises(KeyRingError) as caught:
            decode_ring(data)
        assert "\n" not in str(caught.value), name


@pytest.mark.req("SDD-108")
def test_key_material_never_shows_in_a_repr() -> None:
    key = new_key("EdDSA", T0)
    assert b64(key.material) not in repr(key)
    assert key.material.hex() not in repr(KeyRing("EdDSA", (key,)))
    assert "material" not in repr(RingKey("k", "EdDSA", b"s" * 32, T0, T0))
