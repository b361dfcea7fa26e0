"""A real server on loopback for a test's duration: every test HTTP server runs this way.

The server is built by its caller (its handler, its address, TLS on its socket); this runs
it in a thread and always stops it, closes its socket and waits for the thread.
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def running(server: socketserver.BaseServer, name: str = "loopback") -> Iterator[None]:
    """Serve until the block ends, then shut the server down and close it."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
