"""A TCP relay that delays every byte by a fixed time each way: the wire of a link between two network namespaces.

    python -m tests.deploy.relay LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_SECONDS

This kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is not set), so `tc netem delay` cannot add the latency
of a link; this relay, run inside the namespace at the link's far end, stands in for it. Each direction of each
connection has a reader thread, which stamps every chunk with its arrival time, and a writer thread, which sends
it at arrival + DELAY: a propagation delay, not a per-chunk sleep (a response of many chunks arrives DELAY late,
not DELAY times the chunks). It prints ``ready`` once it listens and runs until killed.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import sys
import threading
import time


def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
    chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def read() -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                chunks.put((time.monotonic() + delay, chunk))
        chunks.put((time.monotonic() + delay, b""))

    def write() -> None:
        with contextlib.suppress(OSError):
            while True:
                due, chunk = chunks.get()
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                if not chunk:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(chunk)

    threading.Thread(target=read, daemon=True).start()
    threading.Thread(target=write, daemon=True).start()


def _connection(client: socket.socket, target: tuple[str, int], delay: float) -> None:
    try:
        upstream = socket.create_connection(target, timeout=5)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    for end in (client, upstream):
        end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _pump(client, upstream, delay)
    _pump(upstream, client, delay)


def main(argv: list[str]) -> int:
    listen_host, listen_port, target_host, target_port, delay = argv
    server = socket.create_server((listen_host, int(listen_port)), backlog=256)
    print("ready", flush=True)
    while True:
        client, _ = server.accept()
        _connection(client, (target_host, int(target_port)), float(delay))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
