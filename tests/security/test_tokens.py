"""Attacks on credentials, against live servers over REST and gRPC: forged access tokens (alg none, HS/EdDSA
confusion, a tampered payload, expiry, a wrong audience or issuer, foreign keys), the tokens of a deleted or
suspended account, refresh-token reuse, and reuse of a mailed one-time token.

Every forged token is made from a genuine one of a live session (PyJWT, with the development HS256 secret
from the server's ``var/jwt_secret``, or the Ed25519 public key from its JWKS), so the only thing wrong with
it is the attack; and each test checks afterwards that the genuine token still works, so a server that
refused everything could not pass.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tests.contract.clients import NEW_PASSWORD, PASSWORD, Client, Outcome, fails, ok, tokens, unique
from tests.security.live import PROTOCOLS, Account, Live, connect, register
from tests.support.smtp import token_in

pytestmark = [pytest.mark.e2e, pytest.mark.req("SRS-110"), pytest.mark.timeout(120)]

Forgery = Callable[[Live, Account], str]
OTHER_SECRET = b"an-attackers-own-secret-of-enough-length-0123456789"
ATTACKER_KEY = Ed25519PrivateKey.generate()
NO_KEY: Any = None  # alg "none" signs with no key; PyJWT's types do not say so


# --- forging ----------------------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def header_and_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a genuine token says, read without verifying it (an attacker holds only the token)."""
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def hs256(claims: dict[str, Any], key: bytes, header: dict[str, Any]) -> str:
    """PyJWT signing HS256 with any ``key`` and the genuine token's ``kid`` and ``typ``."""
    return jwt.encode(claims, key, algorithm="HS256", headers={k: v for k, v in header.items() if k != "alg"})


def hmac_by_hand(claims: dict[str, Any], key: bytes, header: dict[str, Any]) -> str:
    """HS256 made without PyJWT, which refuses a PEM public key as an HMAC secret (an attacker does not)."""
    signing_input = f"{b64url(json.dumps({**header, 'alg': 'HS256'}).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


def alg_none(live: Live, victim: Account, *, keep_signature: bool = False) -> str:
    header, claims = header_and_claims(victim.access)
    unsigned = jwt.encode(claims, NO_KEY, algorithm="none", headers={"kid": header["kid"], "typ": header["typ"]})
    return unsigned + victim.access.rsplit(".", 1)[1] if keep_signature else unsigned


def tampered(victim: Account, **changes: Any) -> str:
    """The genuine header and signature around a payload with ``changes``."""
    header, payload, signature = victim.access.split(".")
    claims = {**json.loads(unb64url(payload)), **changes}
    return f"{header}.{b64url(json.dumps(claims, separators=(',', ':')).encode())}.{signature}"


def resigned(live: Live, victim: Account, **changes: Any) -> str:
    """A token the server's own HS256 secret signs, with ``changes`` to the genuine claims."""
    header, claims = header_and_claims(victim.access)
    return hs256({**claims, **changes}, live.jwt_secret().encode(), header)


def published_key(live: Live) -> tuple[str, bytes]:
    """The EdDSA server's signing key as the world sees it: its ``kid`` and raw public key, from the JWKS."""
    (jwk,) = httpx.get(f"{live.http}/.well-known/jwks.json", timeout=10).json()["keys"]
    return str(jwk["kid"]), unb64url(jwk["x"])


def confused(live: Live, victim: Account, secret_form: str) -> str:
    """HS256 over the genuine claims with the published Ed25519 public key as the HMAC secret."""
    kid, raw = published_key(live)
    header, claims = header_and_claims(victim.access)
    header = {"kid": kid, "typ": header["typ"]}
    if secret_form == "raw":
        return hs256(claims, raw, header)
    if secret_form == "jwk x":
        return hs256(claims, b64url(raw).encode(), header)
    pem = Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hmac_by_hand(claims, pem, header)


def attackers_eddsa(live: Live, victim: Account) -> str:
    """EdDSA by a key of the attacker's own, under the genuine token's ``kid``."""
    header, claims = header_and_claims(victim.access)
    return jwt.encode(claims, ATTACKER_KEY, algorithm="EdDSA", headers={"kid": header["kid"], "typ": "at+jwt"})


def now_of(victim: Account) -> int:
    return int(header_and_claims(victim.access)[1]["iat"])


HS256_FORGERIES: dict[str, Forgery] = {
    "alg none": alg_none,
    "alg none keeping the signature": lambda live, v: alg_none(live, v, keep_signature=True),
    "tampered payload, role admin": lambda live, v: tampered(v, role="admin"),
    "tampered payload, the admin as subject": lambda live, v: tampered(v, sub=live.admin_id),
    "expired an hour ago": lambda live, v: resigned(live, v, iat=now_of(v) - 4500, exp=now_of(v) - 3600),
    "wrong audience": lambda live, v: resigned(live, v, aud="another-service"),
    "audience list without ours": lambda live, v: resigned(live, v, aud=["another-service", "a-third"]),
    "wrong issuer": lambda live, v: resigned(live, v, iss="https://evil.example"),
    "signed by another secret": lambda live, v: hs256(header_and_claims(v.access)[1], OTHER_SECRET, {"typ": "at+jwt"}),
    "EdDSA by the attacker's key": attackers_eddsa,
}
EDDSA_FORGERIES: dict[str, Forgery] = {
    "HS256 with the public key as secret": lambda live, v: confused(live, v, "raw"),
    "HS256 with the JWK x as secret": lambda live, v: confused(live, v, "jwk x"),
    "HS256 with the public key PEM as secret": lambda live, v: confused(live, v, "pem"),
    "alg none": alg_none,
    "tampered payload, role admin": lambda live, v: tampered(v, role="admin"),
    "EdDSA by the attacker's key under the published kid": attackers_eddsa,
}


async def present(client: Client, via: str, token: str) -> Outcome:
    """An access token as a caller's credential (Bearer / authorization metadata) or to be validated."""
    return await client.me(token) if via == "bearer" else await client.validate(token)


VIA = pytest.mark.parametrize("via", ["bearer", "validate"])


@pytest.fixture(scope="package")
def hs256_victim(hs256: Live) -> Account:
    return register(hs256, unique("victim"))


@pytest.fixture(scope="package")
def eddsa_victim(eddsa: Live) -> Account:
    return register(eddsa, unique("victim"))


# --- forged access tokens ---------------------------------------------------------------------------------------


async def assert_refused_then_genuine_works(live: Live, victim: Account, protocol: str, via: str, forged: str) -> None:
    assert forged != victim.access
    async with connect(protocol, live) as client:
        fails(await present(client, via, forged), "unauthenticated")
        ok(await present(client, via, victim.access))


@PROTOCOLS
@VIA
@pytest.mark.parametrize("attack", list(HS256_FORGERIES))
async def test_a_forged_hs256_access_token_is_unauthenticated(
    hs256: Live, hs256_victim: Account, protocol: str, via: str, attack: str
) -> None:
    forged = HS256_FORGERIES[attack](hs256, hs256_victim)
    await assert_refused_then_genuine_works(hs256, hs256_victim, protocol, via, forged)


@PROTOCOLS
@VIA
@pytest.mark.parametrize("attack", list(EDDSA_FORGERIES))
async def test_a_forged_eddsa_access_token_is_unauthenticated(
    eddsa: Live, eddsa_victim: Account, protocol: str, via: str, attack: str
) -> None:
    forged = EDDSA_FORGERIES[attack](eddsa, eddsa_victim)
    await assert_refused_then_genuine_works(eddsa, eddsa_victim, protocol, via, forged)


@PROTOCOLS
async def test_the_genuine_tokens_verify_with_pyjwt_so_the_forgeries_are_made_right(
    hs256: Live, hs256_victim: Account, eddsa: Live, eddsa_victim: Account, protocol: str
) -> None:
    """The forgeries start from what PyJWT reads in genuine tokens; a re-signed copy of the claims works."""
    jwt.decode(hs256_victim.access, hs256.jwt_secret(), algorithms=["HS256"], audience="arcana", issuer="arcana")
    kid, raw = published_key(eddsa)
    assert jwt.get_unverified_header(eddsa_victim.access)["kid"] == kid
    jwt.decode(eddsa_victim.access, Ed25519PublicKey.from_public_bytes(raw), algorithms=["EdDSA"], audience="arcana")
    async with connect(protocol, hs256) as client:  # only the attacked property makes the forgeries fail
        ok(await client.me(resigned(hs256, hs256_victim, jti="a-fresh-jti")))


# --- a deleted or suspended account -----------------------------------------------------------------------------


async def end_account(client: Client, live: Live, state: str, account: str) -> None:
    if state == "deleted":
        ok(await client.delete_user(live.admin_access, account))
    else:
        ok(await client.set_status(live.admin_access, account, "suspended"))


@PROTOCOLS
@pytest.mark.parametrize("state", ["deleted", "suspended"])
@pytest.mark.parametrize("credential", ["bearer access token", "validated access token", "refresh token", "password"])
async def test_the_credentials_of_a_deleted_or_suspended_account_are_unauthenticated(
    hs256: Live, protocol: str, state: str, credential: str
) -> None:
    async with connect(protocol, hs256) as client:
        name = unique(state)
        made = tokens(await client.register(name, f"{name}@example.com", PASSWORD))
        ok(await client.me(made.access))
        await end_account(client, hs256, state, made.id)
        if credential == "bearer access token":
            outcome = await client.me(made.access)
        elif credential == "validated access token":
            outcome = await client.validate(made.access)
        elif credential == "refresh token":
            outcome = await client.refresh(made.refresh)
        else:
            outcome = await client.login(name, PASSWORD)
        fails(outcome, "unauthenticated")


# --- refresh-token reuse ----------------------------------------------------------------------------------------


@PROTOCOLS
async def test_reusing_a_spent_refresh_token_ends_the_whole_session(hs256: Live, protocol: str) -> None:
    """A token two rotations old is reuse whatever the grace period: the thief and the owner both lose it."""
    async with connect(protocol, hs256) as client:
        name = unique("rotated")
        first = tokens(await client.register(name, f"{name}@example.com", PASSWORD))
        second = tokens(await client.refresh(first.refresh))
        third = tokens(await client.refresh(second.refresh))
        ok(await client.me(third.access))
        fails(await client.refresh(first.refresh), "unauthenticated")
        fails(await client.refresh(third.refresh), "unauthenticated")  # the newest one died with its session
        fails(await client.me(third.access), "unauthenticated")
        ok(await client.login(name, PASSWORD))  # the account itself is fine: only that session ended


# --- reuse of mailed one-time tokens ----------------------------------------------------------------------------


async def mailed(live: Live, to: str, subject: str) -> str:
    return token_in(await asyncio.to_thread(live.mail.wait_for_subject, to, subject))


@PROTOCOLS
async def test_a_used_reset_token_is_refused_naming_token(hs256: Live, protocol: str) -> None:
    async with connect(protocol, hs256) as client:
        name = unique("reset")
        tokens(await client.register(name, f"{name}@example.com", PASSWORD))
        ok(await client.forgot_password(f"{name}@example.com"))
        token = await mailed(hs256, f"{name}@example.com", "Reset your password")
        ok(await client.reset_password(token, NEW_PASSWORD))
        again = await client.reset_password(token, "a thief's own new passphrase")
        assert fails(again, "invalid", "token").fields == {"token"}
        fails(await client.login(name, "a thief's own new passphrase"), "unauthenticated")
        ok(await client.login(name, NEW_PASSWORD))


@PROTOCOLS
async def test_a_reset_token_raced_ten_times_at_once_works_exactly_once(hs256: Live, protocol: str) -> None:
    async with connect(protocol, hs256) as client:
        name = unique("race")
        tokens(await client.register(name, f"{name}@example.com", PASSWORD))
        ok(await client.forgot_password(f"{name}@example.com"))
        token = await mailed(hs256, f"{name}@example.com", "Reset your password")
        passwords = [f"raced passphrase number {n:02d}" for n in range(10)]
        outcomes = await asyncio.gather(*(client.reset_password(token, password) for password in passwords))
        kinds = sorted(outcome.kind for outcome in outcomes)
        assert kinds == ["invalid"] * 9 + ["ok"], [str(outcome) for outcome in outcomes]
        for outcome in outcomes:
            if outcome.kind == "invalid":
                assert fails(outcome, "invalid", "token").fields == {"token"}
        (winner,) = [password for password, outcome in zip(passwords, outcomes, strict=True) if outcome.kind == "ok"]
        ok(await client.login(name, winner))


@PROTOCOLS
async def test_a_used_verification_token_is_refused_naming_token(hs256: Live, protocol: str) -> None:
    async with connect(protocol, hs256) as client:
        name = unique("verify")
        tokens(await client.register(name, f"{name}@example.com", PASSWORD))
        token = await mailed(hs256, f"{name}@example.com", "Confirm your email address")
        assert ok(await client.verify_email(token))["is_verified"] is True
        assert fails(await client.verify_email(token), "invalid", "token").fields == {"token"}
