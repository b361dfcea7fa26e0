"""A loopback TCP proxy that can go silent: a half-open connection, made on purpose.

A connection whose peer vanished (a NAT entry dropped, a node cut off, an API server
host powered off) sends nothing and never closes: a client without a read timeout
waits on it forever. :meth:`Proxy.freeze` makes every connection open now behave so
(no byte forwarded either way, nothing closed); connections made afterwards are
forwarded as usual, as a client reconnecting to a healthy server would see.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class Proxy:
    port: int
    connections: int = 0
    """Connections accepted so far."""
    _frozen: list[asyncio.Event] = field(default_factory=list)
    _streams: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        """Stop forwarding on every connection open now, without closing any."""
        for frozen in self._frozen:
            frozen.set()


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frozen: asyncio.Event
) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            if frozen.is_set():
                await asyncio.Event().wait()  # silent, open, forever
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


@contextlib.asynccontextmanager
async def serve(upstream_port: int) -> AsyncIterator[Proxy]:
    """Forward 127.0.0.1:<proxy.port> to 127.0.0.1:``upstream_port`` until the block ends."""
    tasks: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        frozen = asyncio.Event()
        proxy._frozen.append(frozen)
        proxy._streams.extend((writer, up_writer))
        for pump in (_pump(reader, up_writer, frozen), _pump(up_reader, writer, frozen)):
            task = asyncio.create_task(pump)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    proxy = Proxy(port=int(server.sockets[0].getsockname()[1]))
    try:
        yield proxy
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for stream in proxy._streams:
            stream.close()
