"""Rate limits as policies over the counters port: pure rules, the same whichever adapter counts.

A policy has one or more limits (``5/3600`` = 5 per hour); ``Limiter.hit`` counts one request against
every limit of the policy for a key and raises ``RateLimited`` with the longest wait when any limit is
exceeded. Switched off (``ARCANA_RATE_LIMITS=off``, load tests only) it counts nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from py_app.core.errors import RateLimited
from py_app.core.ports import Clock, Counters, Metrics, NoMetrics

logger = logging.getLogger("arcana.security")


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        count, _, seconds = text.strip().partition("/")
        limit = cls(int(count), int(seconds))
        if limit.count < 1 or limit.seconds < 1:
            raise ValueError(text)
        return limit

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}"


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    limits: tuple[Limit, ...]

    @classmethod
    def parse(cls, name: str, text: str) -> Policy:
        """``"1/60,5/3600"``: one a minute and five an hour."""
        return cls(name, tuple(Limit.parse(part) for part in text.split(",") if part.strip()))


class Limiter:
    def __init__(
        self, counters: Counters, clock: Clock, *, enabled: bool = True, metrics: Metrics | None = None
    ) -> None:
        self._counters = counters
        self._clock = clock
        self.enabled = enabled
        self._metrics = metrics or NoMetrics()

    async def hit(self, policy: Policy, key: str) -> int:
        """Count one request of ``key`` under ``policy``: its number in the first limit's window.

        RateLimited (with the longest wait) when it is over any of the policy's limits.
        """
        if not self.enabled:
            return 0
        now, waits, first = self._clock.now(), [], 0
        for limit in policy.limits:
            count, left = await self._counters.hit(_key(policy, limit, key), limit.seconds, now)
            first = first or count
            if count > limit.count:
                waits.append(max(left, 1))
        if waits:
            self.refused(policy)
            raise RateLimited("Too many requests; try again later.", retry_after=max(waits))
        return first

    def refused(self, policy: Policy) -> None:
        """Say (in the log and the metrics) that a request was refused under ``policy``."""
        logger.warning("excess_rate_limit_exceeded", extra={"policy": policy.name})
        self._metrics.rate_limited(policy.name)

    async def release(self, policy: Policy, key: str) -> None:
        """Take back one ``hit`` (it turned out not to count, e.g. a login that succeeded)."""
        if self.enabled:
            for limit in policy.limits:
                await self._counters.release(_key(policy, limit, key))

    async def reset(self, policy: Policy, key: str) -> None:
        if self.enabled:
            for limit in policy.limits:
                await self._counters.reset(_key(policy, limit, key))

    async def hold(self, policy: Policy, key: str, seconds: int) -> None:
        if self.enabled:
            await self._counters.hold(f"hold:{policy.name}:{key}", seconds, self._clock.now())

    async def held(self, policy: Policy, key: str) -> int:
        return await self._counters.held(f"hold:{policy.name}:{key}", self._clock.now()) if self.enabled else 0

    async def count(self, policy: Policy, key: str, window: int) -> int:
        """Count one more of a free-standing tally (e.g. how often an account was locked today)."""
        if not self.enabled:
            return 0
        count, _ = await self._counters.hit(f"tally:{policy.name}:{key}", window, self._clock.now())
        return count


def _key(policy: Policy, limit: Limit, key: str) -> str:
    return f"rate:{policy.name}:{limit}:{key}"


def hashed(key: str) -> str:
    """What a counter is stored under: keys hold emails and addresses, which Redis and the database never see."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]
