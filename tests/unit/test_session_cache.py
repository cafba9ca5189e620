"""The in-process session cache: versioned per session and per user, so a stale fill is refused."""

from __future__ import annotations

import pytest

from py_app.core.identity import Principal
from py_app.infra.cache import InProcessSessionCache

ALICE = Principal("user-a", "session-a", "user")
BOB = Principal("user-b", "session-b", "user")

pytestmark = pytest.mark.req("SDD-083")


async def test_a_fill_read_before_a_forget_is_refused_and_others_are_kept() -> None:
    cache = InProcessSessionCache(ttl=60)
    alice, bob = await cache.stamp(ALICE.session_id, ALICE.user_id), await cache.stamp(BOB.session_id, BOB.user_id)
    await cache.forget([ALICE.session_id])  # alice logs out while both requests read the database
    await cache.put(ALICE, alice)
    await cache.put(BOB, bob)
    assert await cache.get(ALICE.session_id) is None
    assert await cache.get(BOB.session_id) == BOB


async def test_forgetting_a_user_drops_their_entries_and_voids_their_fills() -> None:
    cache = InProcessSessionCache(ttl=60)
    await cache.put(BOB, await cache.stamp(BOB.session_id, BOB.user_id))
    racing = await cache.stamp(BOB.session_id, BOB.user_id)
    await cache.forget_user(BOB.user_id)  # e.g. a role change
    assert await cache.get(BOB.session_id) is None
    await cache.put(BOB, racing)
    assert await cache.get(BOB.session_id) is None
    await cache.put(BOB, await cache.stamp(BOB.session_id, BOB.user_id))
    assert await cache.get(BOB.session_id) == BOB


async def test_clearing_a_full_cache_still_refuses_fills_stamped_before_it() -> None:
    cache = InProcessSessionCache(ttl=60, max_entries=2)
    stale = await cache.stamp(ALICE.session_id, ALICE.user_id)
    await cache.forget([ALICE.session_id, "x", "y"])  # more versions than the bound: the tables are cleared
    await cache.put(ALICE, stale)  # its session version restarted at 0, but the epoch moved on
    assert await cache.get(ALICE.session_id) is None


async def test_entries_expire_after_the_ttl() -> None:
    cache = InProcessSessionCache(ttl=0.0)
    await cache.put(ALICE, await cache.stamp(ALICE.session_id, ALICE.user_id))
    assert await cache.get(ALICE.session_id) is None
