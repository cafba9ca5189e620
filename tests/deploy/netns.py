"""Network namespaces joined by veth links, each link's far end behind a delaying relay: tiers on separate hosts.

The root namespace plays the client (the test process itself). ``Namespaces.tier(name)`` makes a namespace linked
to the root, ``Namespaces.link(a, b)`` links two tiers; a namespace reaches only the ones it is linked to (no
forwarding, no default route), as a NetworkPolicy would allow. A server in a tier listens on the tier's own
127.0.0.1; ``expose`` starts the relay (tests/deploy/relay.py) that serves it on the link's address with the
link's delay each way. Everything is torn down at exit, processes first; names and subnets are random, so two
runs on one machine (CI and a developer) never meet.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOT_NS = ""  # the test's own namespace


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI and the development machines run as root)"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2's `ip` (apt-get install iproute2)"
    return None


def _ip(*args: str, namespace: str = ROOT_NS) -> None:
    argv = ["ip", *(("-n", namespace) if namespace else ()), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Link:
    near: str  # namespace of the near end ("" for the root)
    far: str
    near_address: str
    far_address: str
    delay: float  # seconds each way


class Namespaces:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.token = secrets.token_hex(3)
        self.namespaces: list[str] = []
        self.links: list[Link] = []
        self._veths: list[str] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._third = secrets.randbelow(200) + 20  # 10.<octet>.<x>.0/30 per link
        self._octet = 200 + secrets.randbelow(50)

    def namespace(self, name: str) -> str:
        full = f"ar{self.token}{name}"[:15]
        _ip("netns", "add", full)
        self.namespaces.append(full)
        _ip("link", "set", "lo", "up", namespace=full)
        return full

    def link(self, near: str, far: str) -> Link:
        """A veth pair between ``near`` ("" for the root namespace) and ``far``, a /30 of its own."""
        index = len(self.links)
        base = f"10.{self._octet}.{(self._third + index) % 256}"
        a, b = f"v{self.token}{index}a", f"v{self.token}{index}b"
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
        self._veths.append(a)
        for end, namespace, address in ((a, near, f"{base}.1"), (b, far, f"{base}.2")):
            if namespace:
                _ip("link", "set", end, "netns", namespace)
            _ip("addr", "add", f"{address}/30", "dev", end, namespace=namespace)
            _ip("link", "set", end, "up", namespace=namespace)
        link = Link(near, far, f"{base}.1", f"{base}.2", self.delay)
        self.links.append(link)
        return link

    def spawn(self, namespace: str, argv: Sequence[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``argv`` inside ``namespace`` (its own session, so the whole group can be killed), output to ``log``."""
        with log.open("ab") as sink:
            process = subprocess.Popen(
                ["ip", "netns", "exec", namespace, *argv],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes.append(process)
        return process

    def expose(self, link: Link, port: int, log: Path, *, delay: float | None = None, listen_port: int = 0) -> int:
        """Serve the far end's 127.0.0.1:``port`` on the link's far address (``listen_port``, default the
        same port), every byte delayed by the link's delay (or ``delay``) each way. Returns the port.
        ``log`` is the relay's own file: it is ready when the file says so."""
        listen = listen_port or port
        wait = link.delay if delay is None else delay
        argv = [sys.executable, "-m", "tests.deploy.relay", link.far_address, str(listen), "127.0.0.1", str(port)]
        process = self.spawn(link.far, [*argv, f"{wait:g}"], log, dict(os.environ))
        deadline = time.monotonic() + 30
        while "ready" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"relay on {link.far_address}:{listen} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        return listen

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        for veth in self._veths:  # deleting one end deletes its peer; the namespace may have taken it
            with contextlib.suppress(RuntimeError):
                _ip("link", "del", veth)
        for namespace in self.namespaces:
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", namespace)


@contextlib.contextmanager
def namespaces(delay: float) -> Iterator[Namespaces]:
    made = Namespaces(delay)
    try:
        yield made
    finally:
        made.close()
