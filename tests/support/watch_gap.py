"""A loopback HTTP proxy in front of the real API server that can open a watch gap.

The operator under test is given a kubeconfig naming ``http://127.0.0.1:<port>``; the
proxy sends each request on to the cluster's API server over TLS with the credentials
of the test's own kubeconfig, and streams each answer back as it comes.

:meth:`GapProxy.gap` opens a gap in the watches of the resources named (pods, say):
while it lasts, their open watch streams stay open but forward nothing, so every event
of the gap is lost (kept in :attr:`GapProxy.dropped` for the test to look at). When it
ends, each of those streams ends with what an API server that no longer holds the
versions in between sends, ``410 Gone`` ("too old resource version", as after it was
away for longer than its watch cache's history): the client lists again, and an object
deleted in the gap is simply absent from the list. No ``DELETED`` event ever comes.
Everything else (lists, reads, writes, logs, other watches) passes through untouched.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

EXPIRED = (
    json.dumps(
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": "too old resource version",
                "reason": "Expired",
                "code": 410,
            },
        }
    ).encode()
    + b"\n"
)
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "upgrade",
    "host",
    "accept-encoding",
    "authorization",
}


@dataclass(frozen=True)
class Upstream:
    """Where the API server is and how to reach it, from a kubeconfig."""

    server: str
    ssl: ssl.SSLContext
    token: str | None


def upstream_of(kubeconfig: Path, folder: Path) -> Upstream:
    """The current context's server, CA and client credentials (files or inline data)."""
    config = yaml.safe_load(kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    user = next(u for u in config["users"] if u["name"] == context["context"]["user"])["user"]

    def path(item: dict[str, Any], key: str) -> str | None:
        if f"{key}-data" in item:
            written = folder / key
            written.write_bytes(base64.b64decode(item[f"{key}-data"]))
            return str(written)
        return item.get(key)

    context_ = ssl.create_default_context(cafile=path(cluster["cluster"], "certificate-authority"))
    certificate, key = path(user, "client-certificate"), path(user, "client-key")
    if certificate and key:
        context_.load_cert_chain(certificate, key)
    return Upstream(cluster["cluster"]["server"], context_, user.get("token"))


@dataclass(eq=False)
class _Stream:
    expired: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class GapProxy:
    """The proxy's address, and the gap's controls (call them from the test's thread)."""

    upstream: Upstream
    loop: asyncio.AbstractEventLoop
    port: int = 0
    watched: list[str] = field(default_factory=list)
    """The path of every watch request, in order (the re-lists after a gap show there)."""
    lists: list[str] = field(default_factory=list)
    """The path of every list (GET of a collection without watch), in order."""
    dropped: list[dict[str, Any]] = field(default_factory=list)
    """The events lost in gaps."""
    _gapped: re.Pattern[str] | None = None
    _streams: dict[_Stream, str] = field(default_factory=dict)
    """The watch streams open now, by path."""

    def kubeconfig(self, folder: Path) -> Path:
        """A kubeconfig for the operator: this proxy, in plain HTTP, without credentials."""
        path = folder / "gap-proxy.kubeconfig"
        server = f"http://127.0.0.1:{self.port}"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "proxy", "cluster": {"server": server}}],
                    "users": [{"name": "nobody", "user": {}}],
                    "contexts": [
                        {"name": "proxy", "context": {"cluster": "proxy", "user": "nobody"}}
                    ],
                    "current-context": "proxy",
                }
            )
        )
        return path

    @contextlib.contextmanager
    def gap(self, paths: str) -> Iterator[None]:
        """Lose every event of the watches whose path matches the regex PATHS until the
        block ends; then end those watches with 410 Gone."""
        self.loop.call_soon_threadsafe(self._open, re.compile(paths))
        try:
            yield
        finally:
            asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(10)

    def _open(self, paths: re.Pattern[str]) -> None:
        self._gapped = paths

    async def _close(self) -> None:
        gapped, self._gapped = self._gapped, None
        for stream, path in self._streams.items():
            if gapped is not None and gapped.search(path):
                stream.expired.set()

    # --- serving -----------------------------------------------------------------------

    async def handle(self, request: web.Request, session: aiohttp.ClientSession) -> Any:
        watch = request.query.get("watch") in {"true", "1"}
        (self.watched if watch else self.lists).append(request.path)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        if self.upstream.token:
            headers["Authorization"] = f"Bearer {self.upstream.token}"
        async with session.request(
            request.method,
            self.upstream.server + request.path_qs,
            headers=headers,
            data=await request.read() if request.can_read_body else None,
            ssl=self.upstream.ssl,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        ) as answer:
            response = web.StreamResponse(
                status=answer.status,
                headers={k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP},
            )
            await response.prepare(request)
            # the operator going away mid-stream (stopped, or a watch it gave up) ends it
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                if watch and answer.status == 200:
                    await self._watch(request.path, answer, response)
                else:
                    async for chunk in answer.content.iter_any():
                        await response.write(chunk)
                await response.write_eof()
            return response

    async def _watch(
        self, path: str, answer: aiohttp.ClientResponse, response: web.StreamResponse
    ) -> None:
        stream = _Stream()
        self._streams[stream] = path
        try:
            while True:
                read = asyncio.ensure_future(answer.content.readline())
                expired = asyncio.ensure_future(stream.expired.wait())
                try:
                    done, _ = await asyncio.wait({read, expired}, return_when="FIRST_COMPLETED")
                finally:
                    for waiting in (read, expired):
                        if not waiting.done():
                            waiting.cancel()
                if expired in done:
                    await response.write(EXPIRED)
                    return
                line = read.result()
                if not line:
                    return
                if self._gapped is not None and self._gapped.search(path):
                    self.dropped.append(json.loads(line))
                    continue
                await response.write(line)
        finally:
            del self._streams[stream]


@contextlib.contextmanager
def serve(kubeconfig: Path) -> Iterator[GapProxy]:
    """Run the proxy in a thread of its own (an event loop) until the block ends."""
    loop = asyncio.new_event_loop()
    folder = tempfile.TemporaryDirectory(prefix="gap-proxy-")
    proxy = GapProxy(upstream_of(kubeconfig, Path(folder.name)), loop)
    started = threading.Event()
    stopping: asyncio.Event | None = None
    handlers: set[asyncio.Task[Any]] = set()

    async def main() -> None:
        nonlocal stopping
        stopping = asyncio.Event()
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            app = web.Application(client_max_size=64 * 1024 * 1024)

            async def handle(request: web.Request) -> Any:
                task = asyncio.current_task()
                assert task is not None
                handlers.add(task)
                try:
                    return await proxy.handle(request, session)
                finally:
                    handlers.discard(task)

            app.router.add_route("*", "/{tail:.*}", handle)
            # a handler whose client went away is cancelled (a watch it was forwarding)
            runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            proxy.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            started.set()
            await stopping.wait()
            for task in list(handlers):
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        if not started.wait(10):
            raise RuntimeError("the gap proxy did not start")
        yield proxy
    finally:
        assert stopping is not None
        loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10)
        loop.close()
        folder.cleanup()
