"""Login throttling: failures counted per account and per client address, a lock with back-off.

Checked before any password is hashed. A known account is counted as itself (its username and its
email together); an unknown one by the login as typed, normalised, so it locks exactly as a known one
does: neither the answer nor its timing tells them apart. An attempt is counted before it is
evaluated, so concurrent attempts can never get more evaluations than the limit allows; a login that
succeeds takes its attempts back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from py_app.core.errors import RateLimited
from py_app.core.limits import Limiter, Policy
from py_app.core.ports import Metrics, NoMetrics
from py_app.users.models import normalize_email, username_key

security_log = logging.getLogger("arcana.security")
DAY = 24 * 3600
LOCKED = "Too many failed logins; try again later."


@dataclass(frozen=True, slots=True)
class LoginPolicies:
    account: Policy  # e.g. 5 failures in 15 minutes
    address: Policy  # e.g. 20 failures a minute from one client address
    backoff: tuple[int, ...] = (60, 300, 900)  # lock seconds for the 1st, 2nd, 3rd+ lock of a day


def login_key(username_or_email: str) -> str:
    """The login as the accounts store compares it, so every spelling of one account counts together."""
    typed = username_or_email.strip()
    if "@" in typed:
        return normalize_email(typed)
    return username_key(typed) or typed


class LoginThrottle:
    def __init__(self, limiter: Limiter, policies: LoginPolicies, metrics: Metrics | None = None) -> None:
        self._limiter = limiter
        self._policies = policies
        self._metrics = metrics or NoMetrics()

    async def admit(self, account: str, address: str) -> int:
        """Before any hashing: RateLimited while the account is locked or either is over its limit;
        otherwise the attempt's number for the account (it is counted now, evaluated next)."""
        policies = self._policies
        wait = await self._limiter.held(policies.account, account)
        if wait:
            self._limiter.refused(policies.account)
            raise RateLimited(LOCKED, retry_after=wait)
        await self._limiter.hit(policies.address, address)
        try:
            return await self._limiter.hit(policies.account, account)
        except RateLimited:
            await self._lock(account)
            raise

    async def failed(self, account: str, attempt: int) -> bool:
        """After a failed evaluation: True when it was the last one allowed (the account is now locked)."""
        if self._limiter.enabled and attempt >= self._policies.account.limits[0].count:
            await self._lock(account)
            return True
        return False

    async def succeeded(self, account: str, address: str) -> None:
        await self._limiter.reset(self._policies.account, account)
        await self._limiter.release(self._policies.address, address)

    async def _lock(self, account: str) -> None:
        if await self._limiter.held(self._policies.account, account):
            return
        backoff = self._policies.backoff
        locks = await self._limiter.count(self._policies.account, account, DAY)
        seconds = backoff[min(locks, len(backoff)) - 1]
        await self._limiter.hold(self._policies.account, account, seconds)
        self._metrics.lockout()
        security_log.warning("authn_login_lock", extra={"seconds": seconds})
