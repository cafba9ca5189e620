"""The token adapter as every authenticated request calls it: ``JwtAccessTokens.verify`` per key ring shape."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from py_app.infra.keys import KeyRing, new_key, secret_ring
from py_app.infra.security import JwtAccessTokens

NOW = int(time.time())


def ring(shape: str) -> KeyRing:
    if shape == "HS256 1 key":
        return secret_ring(b"k" * 48)
    rotated = KeyRing("EdDSA", (new_key("EdDSA", NOW - 20),))
    for step in range(1, 3 if shape == "EdDSA 3 keys" else 1):
        rotated = rotated.rotated(new_key("EdDSA", NOW - 20 + step, NOW - 20 + step), NOW - 20 + step, verify_for=935)
    return rotated


@pytest.mark.parametrize("impl", ["HS256 1 key", "EdDSA 1 key", "EdDSA 3 keys"])
def test_adapter_verify(benchmark: Any, impl: str) -> None:
    benchmark.group = "token adapter verify (per request)"
    tokens = JwtAccessTokens(ring(impl), issuer="arcana", audience="arcana", ttl=900)
    now = datetime.fromtimestamp(NOW, UTC)
    token = tokens.issue(user_id="0b9c2d4e-8f1a-4c3b-9e7d-1a2b3c4d5e6f", session_id="s" * 36, role="user", now=now)
    claims = benchmark(tokens.verify, token, now)
    assert claims.role == "user"
