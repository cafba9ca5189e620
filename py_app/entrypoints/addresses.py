"""The caller's address, the same way on both transports: the socket peer, unless the peer is a
trusted proxy (``ARCANA_TRUSTED_PROXIES``); then the rightmost ``X-Forwarded-For`` entry that is not a
trusted proxy itself. A client can write anything into that header, so it is believed only from proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(peer: str, forwarded: str | None, trusted: Sequence[Network]) -> str:
    if not trusted or not forwarded or not _within(peer, trusted):
        return peer
    for hop in reversed([item.strip() for item in forwarded.split(",") if item.strip()]):
        if not _within(hop, trusted):
            return hop if _is_address(hop) else peer
    return peer


def _within(address: str, trusted: Sequence[Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
