"""A TCP proxy between the service and its database that adds latency or stalls, run on a loop in its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from tests.conftest import free_port


class LatencyProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; every chunk the database sends waits ``delay`` seconds more
    (connections stay open: a slow or, with a delay past every timeout, a hung database). While ``blocked``,
    nothing passes either way and what was sent meanwhile arrives when it is lifted: a network partition."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.delay = 0.0
        self._open = asyncio.Event()  # cleared while blocked; only touched on the proxy's loop
        self._blocked = False
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def blocked(self) -> bool:
        return self._blocked

    @blocked.setter
    def blocked(self, value: bool) -> None:
        self._blocked = value
        done = threading.Event()

        def switch() -> None:
            (self._open.clear if value else self._open.set)()
            done.set()

        self._loop.call_soon_threadsafe(switch)
        done.wait(10)  # in force before the caller goes on

    def _run(self) -> None:
        self._open.set()
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", self.port))
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for writer in self._writers:
                writer.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, server_writer}
        await asyncio.gather(
            self._pump(client_reader, server_writer, delayed=False),
            self._pump(server_reader, client_writer, delayed=True),
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                if delayed and self.delay:
                    await asyncio.sleep(self.delay)
                await self._open.wait()
                writer.write(chunk)
                await writer.drain()
        writer.close()

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextlib.contextmanager
def latency_proxy(target: int) -> Iterator[LatencyProxy]:
    with LatencyProxy(target) as proxy:
        yield proxy
