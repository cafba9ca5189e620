"""Rate limits, login throttling, the Redis failover and the client address: pure rules over fakes."""

from __future__ import annotations

import ipaddress
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from py_app.auth.models import ClientInfo
from py_app.core.errors import RateLimited, Unauthenticated
from py_app.core.limits import Limiter, Policy
from py_app.entrypoints.addresses import client_address
from py_app.infra.counters import FailoverCounters, InProcessCounters
from py_app.users.models import NewUser
from tests.fakes import FixedClock
from tests.unit.test_auth_service import PASSWORD, CountingHasher, Rig

CLIENT = ClientInfo("pytest", "198.51.100.7")
pytestmark = pytest.mark.req("SRS-103")


async def test_a_policy_limits_on_every_window_and_waits_for_the_longest() -> None:
    clock = FixedClock()
    limiter = Limiter(InProcessCounters(), clock)
    policy = Policy.parse("forgot", "1/60,3/3600")
    assert await limiter.hit(policy, "a") == 1
    with pytest.raises(RateLimited) as caught:
        await limiter.hit(policy, "a")  # refused, and counted: a fixed window counts every request
    assert caught.value.retry_after == 60
    clock.advance(61)
    assert await limiter.hit(policy, "a") == 1  # a new minute; the third of the hour
    clock.advance(61)
    with pytest.raises(RateLimited) as caught:
        await limiter.hit(policy, "a")  # the minute is free again, the hour is not
    assert 3000 < (caught.value.retry_after or 0) <= 3600
    await limiter.hit(policy, "b")  # another key, its own count
    off = Limiter(InProcessCounters(), clock, enabled=False)
    for _ in range(10):
        await off.hit(policy, "a")


async def test_a_locked_login_costs_no_hash_and_an_unknown_account_locks_alike() -> None:
    hasher = CountingHasher()
    rig = Rig(hasher=hasher)
    await rig.auth.register(NewUser("ann", "ann@example.com", PASSWORD), CLIENT)
    # One account under two spellings counts as one; an unknown login counts as itself, alike.
    for login, attempts in (("ann", 3), ("ANN@example.com", 2), ("ghost", 5)):
        for attempt in range(attempts):
            with pytest.raises(Unauthenticated):
                await rig.auth.login(login, "not the password", ClientInfo("t", f"10.0.0.{attempt}"))
    verified = len(hasher.verified)
    for login in ("ann", "ann@EXAMPLE.com", "ghost"):
        with pytest.raises(RateLimited) as caught:
            await rig.auth.login(login, PASSWORD, ClientInfo("t", "10.0.1.1"))
        assert caught.value.retry_after == 60
    assert len(hasher.verified) == verified  # checked before any hashing


async def test_locks_grow_one_five_fifteen_minutes_and_a_success_forgives() -> None:
    rig = Rig()
    await rig.auth.register(NewUser("ann", "ann@example.com", PASSWORD), CLIENT)
    waits = []
    for _ in range(4):
        for attempt in range(5):
            with pytest.raises(Unauthenticated):
                await rig.auth.login("ann", "nope nope nope", ClientInfo("t", f"10.2.0.{attempt}"))
        with pytest.raises(RateLimited) as caught:
            await rig.auth.login("ann", PASSWORD, CLIENT)
        waits.append(caught.value.retry_after)
        rig.clock.advance(15 * 60 + 1)  # the lock and the failure window are both over
    assert waits == [60, 300, 900, 900]
    for attempt in range(4):
        with pytest.raises(Unauthenticated):
            await rig.auth.login("ann", "nope nope nope", ClientInfo("t", f"10.3.0.{attempt}"))
    await rig.auth.login("ann", PASSWORD, CLIENT)  # forgives the four
    for attempt in range(4):
        with pytest.raises(Unauthenticated):
            await rig.auth.login("ann", "nope nope nope", ClientInfo("t", f"10.4.0.{attempt}"))
    assert (await rig.auth.login("ann", PASSWORD, CLIENT)).user.username == "ann"


@pytest.mark.req("SRS-104")
async def test_register_forgot_and_refresh_have_their_own_limits() -> None:
    rig = Rig()
    made = await rig.auth.register(NewUser("ann", "ann@example.com", PASSWORD), CLIENT)
    await rig.recovery.forgot_password("ann@example.com", CLIENT)
    for email in ("ann@example.com", "ANN@example.com"):  # counted by the address asked for, however written
        with pytest.raises(RateLimited):
            await rig.recovery.forgot_password(email, ClientInfo("t", "10.9.9.9"))
    await rig.recovery.forgot_password("nobody@example.com", CLIENT)
    with pytest.raises(RateLimited):
        await rig.recovery.forgot_password("nobody@example.com", CLIENT)  # an unknown address: the same
    token = made.tokens.refresh_token
    for _ in range(60):
        token = (await rig.auth.refresh(token, CLIENT)).tokens.refresh_token
    with pytest.raises(RateLimited):
        await rig.auth.refresh(token, CLIENT)


async def test_with_redis_down_counting_goes_on_in_process_and_the_log_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class DeadRedis(InProcessCounters):
        async def hit(self, key: str, window: int, now: object) -> tuple[int, int]:
            raise RedisConnectionError("gone")

        async def held(self, key: str, now: object) -> int:
            raise RedisConnectionError("gone")

    counters = FailoverCounters(DeadRedis(), InProcessCounters())
    limiter = Limiter(counters, FixedClock())
    policy = Policy.parse("login_address", "2/60")
    with caplog.at_level(logging.WARNING, logger="arcana.limits"):
        await limiter.hit(policy, "a")
        await limiter.hit(policy, "a")
        with pytest.raises(RateLimited):
            await limiter.hit(policy, "a")
        assert await limiter.held(policy, "a") == 0
    assert counters.failovers == 4
    assert caplog.text.count("redis unavailable") == 1  # said once, not per call


@pytest.mark.req("SRS-104")
def test_x_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_address("203.0.113.5", "198.51.100.1", proxies) == "203.0.113.5"  # not a proxy: the peer
    assert client_address("10.0.0.2", "198.51.100.1", proxies) == "198.51.100.1"
    assert client_address("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", proxies) == "198.51.100.1"
    assert client_address("10.0.0.2", "not-an-address", proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", "198.51.100.1", []) == "10.0.0.2"
