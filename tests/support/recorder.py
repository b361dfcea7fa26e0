"""A real HTTP server that records what it receives (webhook and reachability tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support import loopback


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    url: str
    requests: list[Request] = field(default_factory=list)
    script: list[tuple[int, float]] = field(default_factory=list)
    """Replies to the next requests, in order: (status, seconds to wait before answering).
    Once it is used up, every request gets the server's ``status`` at once."""
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Request]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


@contextmanager
def serve(address: str = "127.0.0.1", status: int = 200) -> Iterator[Recorder]:
    """Serve on ADDRESS (a free port) until the block ends; every request gets STATUS."""
    recorder: Recorder

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with recorder._arrived:
                recorder.requests.append(
                    Request(self.command, self.path, dict(self.headers.items()), body)
                )
                answer, delay = recorder.script.pop(0) if recorder.script else (status, 0.0)
                recorder._arrived.notify_all()
            if delay and recorder._stopping.wait(delay):
                return
            try:
                self.send_response(answer)
                self.send_header("Content-Type", "text/plain")
                payload = b"recorded\n"
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up waiting (a delayed answer)

        do_GET = do_POST = do_PUT = _record  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer((address, 0), Handler)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    recorder = Recorder(url=f"http://{host}:{port}")
    with loopback.running(server, "recorder"):
        try:
            yield recorder
        finally:
            recorder._stopping.set()  # before the shutdown: delayed answers end now
