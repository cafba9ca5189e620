"""Redis client construction; Redis is optional and every user of it has an in-process fallback."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str, timeout: float = 2.0) -> Redis:
    """A pooled client with short timeouts, so a dead Redis fails a request instead of hanging it."""
    return Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30)
