"""SRS-037: encode_user/encode_users are byte-identical to msgspec.json.encode."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from py_app import _rust_core as rc

USERS: list[dict[str, Any]] = [
    {
        "id": "0b9c2d4e-8f1a-4c3b-9e7d-1a2b3c4d5e6f",
        "email": "ada@example.com",
        "display_name": "Ada Lovelace",
        "role": "admin",
        "is_active": True,
        "email_verified": False,
        "created_at": "2026-11-26T10:52:07.123456+00:00",
        "updated_at": None,
        "failed_logins": 0,
        "last_login_ip": None,
    },
    {
        "id": 42,
        "email": "zoë.ünïcödé@exämple.org",
        "display_name": "Zoë 🚀 \u4e2d\u6587 \u0627\u0644\u0639\u0631\u0628\u064a\u0629",
        "role": "user",
        "is_active": False,
        "quota": 1.5,
        "score": -0.0,
        "big": 2**64 - 1,
        "neg": -(2**63),
        "tags": ["a", "b", []],
        "meta": {"nested": {"deep": [1, 2.25, None, True, {"x": "y"}]}},
    },
    {
        "display_name": 'quote " backslash \\ slash / tab \t nl \n cr \r bs \b ff \f nul \x00 esc \x1b del \x7f',
        "sep": "\u2028\u2029",
        "floats": [0.1, 1e16, 1e15, 1e-7, 1e-5, 1.7976931348623157e308, 5e-324, float("nan"), float("inf")],
        "empty": {},
        "empty_str": "",
        "tuple": (1, "two"),
    },
]

LEAF = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats() | st.text()
VALUE = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
USER = st.dictionaries(st.text(max_size=12), VALUE, max_size=10)


@pytest.mark.req("SRS-037")
@pytest.mark.parametrize("user", USERS, ids=["typical", "unicode-numbers", "escapes-floats"])
def test_encode_user_matches_msgspec(user: dict[str, Any]) -> None:
    assert rc.encode_user(user) == msgspec.json.encode(user)


@pytest.mark.req("SRS-037")
def test_encode_users_matches_msgspec() -> None:
    many = USERS * 40
    assert rc.encode_users(many) == msgspec.json.encode(many)
    assert rc.encode_users([]) == b"[]"


@pytest.mark.req("SRS-037")
@settings(max_examples=300, deadline=None, database=None)
@given(user=USER)
def test_random_records_match_msgspec(user: dict[str, Any]) -> None:
    assert rc.encode_user(user) == msgspec.json.encode(user)
    assert rc.encode_users([user, user]) == msgspec.json.encode([user, user])


@pytest.mark.req("SRS-037")
def test_unsupported_values() -> None:
    with pytest.raises(TypeError):
        rc.encode_user({"when": object()})
    with pytest.raises(TypeError):
        rc.encode_user({1: "int key"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        rc.encode_users([{"ok": 1}, "not a dict"])  # type: ignore[list-item]
    with pytest.raises(rc.CoreError, match="out of range"):
        rc.encode_user({"n": 2**64})
    with pytest.raises(rc.CoreError):
        rc.encode_user({"bad": "\ud800"})
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(rc.CoreError, match="depth"):
        rc.encode_user(cyclic)
