"""Signing keys over REST: the published key set, EdDSA tokens, and a rotation the running app follows."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.integration.api.api_support import V1, Api, assert_problem, bearer, expect
from tests.integration.api.conftest import OpenApi

JWKS = "/.well-known/jwks.json"
EDDSA = {"jwt_algorithm": "EdDSA", "jwt_keys_check_interval": 0.1}
ROOT = Path(__file__).resolve().parents[3]


def rotate_keys(api: Api, *args: str) -> str:
    """`python -m py_app rotate-keys` in another process, on the running app's data directory."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ARCANA_")}
    environ.update(ARCANA_DATA_DIR=api.settings.data_dir, ARCANA_JWT_ALGORITHM="EdDSA")
    done = subprocess.run(
        [sys.executable, "-m", "py_app", "rotate-keys", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def published_kids(api: Api) -> list[str]:
    return [key["kid"] for key in expect(await api.client.get(JWKS), 200)["keys"]]


async def eventually(check: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "the running app did not follow the key ring in time"
        await asyncio.sleep(0.05)


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def me(api: Api, token: str) -> int:
    return (await api.client.get(f"{V1}/auth/me", headers=bearer(token))).status_code


@pytest.mark.req("SRS-108")
async def test_hs256_publishes_an_empty_key_set_with_a_cache_lifetime(sqlite_api: Api) -> None:
    response = await sqlite_api.client.get(JWKS)
    assert expect(response, 200) == {"keys": []}
    assert response.headers["cache-control"] == "public, max-age=600"
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.req("SRS-108")
async def test_eddsa_tokens_verify_with_pyjwt_from_the_published_key_set(open_api: OpenApi) -> None:
    async with open_api(**EDDSA, jwks_max_age=300, with_admin=False) as api:
        response = await api.client.get(JWKS)
        assert response.headers["cache-control"] == "public, max-age=300"
        (jwk,) = expect(response, 200)["keys"]
        assert {name: jwk[name] for name in ("kty", "crv", "alg", "use")} == {
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
        }
        assert "d" not in jwk
        login = await api.register("erin")
        assert jwt.get_unverified_header(login.access) == {"alg": "EdDSA", "kid": jwk["kid"], "typ": "at+jwt"}
        key = jwt.PyJWKSet.from_dict(response.json())[jwk["kid"]]
        claims = jwt.decode(login.access, key.key, algorithms=["EdDSA"], audience="arcana", issuer="arcana")
        assert claims["sub"] == login.id
        assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "sid", "role"}
        assert await me(api, login.access) == 200


def forged_hs256(kid: str, secret: bytes, template: dict[str, Any]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "at+jwt"}).encode())
    payload = b64(json.dumps({**template, "role": "admin"}).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


@pytest.mark.req("SRS-108")
async def test_an_hs256_token_made_with_the_published_public_key_as_secret_is_401(open_api: OpenApi) -> None:
    async with open_api(**EDDSA, with_admin=False) as api:
        login = await api.register("mallory")
        (jwk,) = expect(await api.client.get(JWKS), 200)["keys"]
        claims = jwt.decode(login.access, options={"verify_signature": False})
        public = base64.urlsafe_b64decode(jwk["x"] + "=")
        for secret in (public, jwk["x"].encode(), json.dumps(jwk).encode()):
            forged = forged_hs256(jwk["kid"], secret, claims)
            response = await api.client.get(f"{V1}/auth/me", headers=bearer(forged))
            assert_problem(response, 401)
            assert_problem(await api.client.post(f"{V1}/auth/validate", json={"access_token": forged}), 401)


@pytest.mark.req("SRS-109")
async def test_the_running_app_follows_a_rotation_and_refuses_a_retired_key(open_api: OpenApi) -> None:
    async with open_api(**EDDSA, with_admin=False) as api:
        before = await api.register("rita")
        (first,) = await published_kids(api)

        printed = await asyncio.to_thread(rotate_keys, api, "--delay", "1")
        assert f"key {first} verifies until" in printed
        await eventually(lambda: _has_keys(api, 2))
        (second,) = set(await published_kids(api)) - {first}

        async def signs_with_the_new_key() -> bool:
            return kid_of((await api.login("rita")).access) == second

        await eventually(signs_with_the_new_key)
        assert kid_of(before.access) == first
        assert await me(api, before.access) == 200  # signed before the rotation, still valid after it

        printed = await asyncio.to_thread(rotate_keys, api, "--now", "--retire-previous")
        assert f"retired key {first}" in printed

        async def refused() -> bool:
            return await me(api, before.access) == 401

        await eventually(refused)
        assert_problem(await api.client.get(f"{V1}/auth/me", headers=bearer(before.access)), 401)
        validate = await api.client.post(f"{V1}/auth/validate", json={"access_token": before.access})
        assert_problem(validate, 401)
        assert first not in await published_kids(api)
        assert await me(api, (await api.login("rita")).access) == 200


async def _has_keys(api: Api, count: int) -> bool:
    return len(await published_kids(api)) == count
