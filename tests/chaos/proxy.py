"""A loopback TCP proxy for fault injection: cut every connection on command, add latency.

    proxy = await ChaosProxy("127.0.0.1", redis_port).start()
    url = proxy.url                 # give this to clients and workers instead of Redis's
    proxy.cut()                     # abort every open connection, both sides, at once
    proxy.latency = 0.04            # delay each chunk 40 ms in each direction (order kept)
    await proxy.close()

Cuts abort the sockets (RST), as a failing network or a restarted load balancer would; new
connections are accepted at once, so a client that reconnects gets through.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class ChaosProxy:
    def __init__(self, target_host: str, target_port: int, *, latency: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.latency = latency
        self.connections = 0  # accepted so far
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> ChaosProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def cut(self) -> int:
        """Abort every open connection; returns how many were cut."""
        links = list(self._links)
        for client, upstream in links:
            client.transport.abort()
            upstream.transport.abort()
        self._links.clear()
        self.cuts += 1
        return len(links)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        for task in pumps:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # One direction ended (EOF, reset or cut): tear the whole link down.
            for task in pumps:
                task.cancel()
            self._links.discard(link)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction; with latency, each chunk leaves ``latency`` s after it came in,
        in order, without holding back the chunks behind it (a pipe, not a stop-and-wait)."""
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await chunks.get()
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
                chunks.task_done()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                chunks.put_nowait((time.monotonic() + self.latency, data))
                if sender.done():
                    break
            # Flush what is still in the pipe (unless the other side is gone already).
            flushed = asyncio.ensure_future(chunks.join())
            await asyncio.wait({flushed, sender}, return_when=asyncio.FIRST_COMPLETED)
            flushed.cancel()
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
