"""The address of an internal tier (``ARCANA_SERVICE_TARGET``, ``ARCANA_REPOSITORY_TARGET``) as a gRPC target.

Three spellings, checked at start (``config``) and turned into what grpc's resolvers read (``remote.Target``):

- ``host:port``: one address (a name is resolved by grpc's DNS resolver, every address it has balanced);
- ``dns:///name:port``: grpc's DNS resolver, re-resolved as the name's addresses change (a headless
  Service on Kubernetes, a scaled compose service);
- ``ip:port,ip:port,...``: a fixed list of IP addresses of one family, grpc's ``ipv4:``/``ipv6:`` target.
  Names are not taken in a list: grpc has no resolver for a list of names, and resolving them once
  here would pin the addresses of the day the process started; ``dns:///`` is the way for names.

Every channel balances ``round_robin`` over what its target resolves to (``remote.SERVICE_CONFIG``).
Pure Python, no grpc: ``config`` imports it.
"""

from __future__ import annotations

import ipaddress
import re

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
SPELLINGS = "host:port, dns:///name:port, or a comma-separated list of ip:port"


class TargetError(ValueError):
    """Not a target this service understands; the message is one line."""


def channel_target(setting: str) -> str:
    """The gRPC target for a tier address setting; ``TargetError`` when it is none of the three spellings."""
    text = setting.strip()
    if text.startswith("dns:"):
        if not text.startswith("dns:///"):
            raise TargetError(f"{text!r}: write dns:///name:port (no DNS server authority)")
        _split(text.removeprefix("dns:///"), names=True)
        return text
    if "," not in text:
        _split(text, names=True)
        return text
    families = set()
    addresses = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise TargetError(f"{text!r}: an empty entry in the list")
        host, port = _split(item, names=False)
        families.add(ipaddress.ip_address(host).version)
        addresses.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if len(families) > 1:
        raise TargetError(f"{text!r}: a list takes addresses of one family, IPv4 or IPv6")
    if len(set(addresses)) != len(addresses):
        raise TargetError(f"{text!r}: an address is listed twice")
    return f"ipv{families.pop()}:{','.join(addresses)}"


def _split(item: str, *, names: bool) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for an IPv6 address) → (host, port), checked."""
    host, sep, port = item.rpartition(":")
    if not sep or not host or not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise TargetError(f"{item!r} is not host:port with a port of 1 to 65535 (the spellings: {SPELLINGS})")
    bracketed = host.startswith("[") and host.endswith("]")
    bare = host[1:-1] if bracketed else host
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        address = None
    if address is not None:
        if address.version == 6 and not bracketed:
            raise TargetError(f"{item!r}: write an IPv6 address in brackets, [address]:port")
        return bare, int(port)
    if bracketed:
        raise TargetError(f"{item!r}: {bare!r} in brackets is not an IPv6 address")
    if not names:
        raise TargetError(f"{item!r}: a list takes IP addresses; for a name use dns:///{item}")
    if not _NAME.fullmatch(host):
        raise TargetError(f"{item!r}: {host!r} is not a host name or an IP address")
    return host, int(port)
