"""Rust encode_user/encode_users vs msgspec.json.encode vs orjson.dumps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import orjson
import pytest

from py_app import _rust_core as rc

USER: dict[str, Any] = {
    "id": "0b9c2d4e-8f1a-4c3b-9e7d-1a2b3c4d5e6f",
    "email": "ada.lovelace@example.com",
    "display_name": "Ada Lovelace",
    "role": "admin",
    "is_active": True,
    "email_verified": True,
    "created_at": "2026-11-26T10:52:07.123456+00:00",
    "updated_at": None,
    "failed_logins": 0,
    "locale": "en-GB",
}
USERS = [{**USER, "id": f"{i:08d}-8f1a-4c3b-9e7d-1a2b3c4d5e6f", "failed_logins": i} for i in range(100)]
ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "msgspec": msgspec.json.encode,
    "orjson": orjson.dumps,
}


@pytest.mark.parametrize("impl", ["rust", "msgspec", "orjson"])
def test_codec_one_user(benchmark: Any, impl: str) -> None:
    benchmark.group = "codec 1 user"
    fn = rc.encode_user if impl == "rust" else ENCODERS[impl]
    assert fn(USER) == msgspec.json.encode(USER)
    benchmark(fn, USER)


@pytest.mark.parametrize("impl", ["rust", "msgspec", "orjson"])
def test_codec_100_users(benchmark: Any, impl: str) -> None:
    benchmark.group = "codec 100 users"
    fn = rc.encode_users if impl == "rust" else ENCODERS[impl]
    assert fn(USERS) == msgspec.json.encode(USERS)
    benchmark(fn, USERS)
