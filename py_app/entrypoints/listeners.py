"""An instance's listen addresses, claimed by its runner before any worker starts.

Workers bind their ports with SO_REUSEPORT so that the kernel spreads connections among them. The same
option lets any other process of the same user bind the same port, and the kernel then splits the
connections between two services (on two databases) without a word. So the runner claims each address
first, and a second instance stops with one line naming it:

* an abstract Unix socket named after the address: only one process on the host can hold a name, and
  the kernel drops it when the holder dies (no stale lock file), so two instances started at the same
  moment cannot both pass;
* a trial bind with SO_REUSEADDR but without SO_REUSEPORT: it fails when any process, an Arcana
  instance or not, already listens on the address (SO_REUSEADDR only so that the TIME_WAIT connections
  a stopped predecessor left behind do not block a restart).
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterable, Iterator

from py_app.config import Settings


class AddressInUse(OSError):
    """Another process listens on (or has claimed) an address this instance must serve."""


@contextlib.contextmanager
def claimed(addresses: Iterable[tuple[str, str, int]]) -> Iterator[None]:
    """Hold ``(label, host, port)`` addresses for this instance while the block runs; AddressInUse if taken."""
    with contextlib.ExitStack() as held:
        for label, host, port in addresses:
            held.enter_context(_claim(label, host, port))
        yield


@contextlib.contextmanager
def _claim(label: str, host: str, port: int) -> Iterator[None]:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    taken = AddressInUse(f"{label} address {where} is in use by another process")
    try:
        resolved = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise OSError(f"{label} host {host!r} does not resolve") from None
    with contextlib.ExitStack() as held:
        for family, kind, protocol, _name, sockaddr in resolved:
            lock = held.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            try:
                lock.bind(f"\0arcana-listen:{sockaddr[0]}:{port}")
            except OSError:
                raise taken from None
            with socket.socket(family, kind, protocol) as trial:
                trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    trial.bind(sockaddr)
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise taken from None
                    raise OSError(f"cannot listen on {label} address {where}: {exc.strerror}") from None
        yield


def metrics_address(settings: Settings) -> list[tuple[str, str, int]]:
    """The management listener's address, when one is configured (claimed like the public ones)."""
    return [("metrics", settings.metrics_host, settings.metrics_port)] if settings.metrics_port is not None else []


@contextlib.contextmanager
def metrics_endpoint(settings: Settings) -> Iterator[None]:
    """``GET /metrics`` on the management port while the block runs, summing the workers started inside it."""
    if settings.metrics_port is None:
        yield
        return
    from py_app.infra import prometheus  # only when wanted: processes without metrics never load it

    with prometheus.serving(settings.metrics_host, settings.metrics_port):
        yield
