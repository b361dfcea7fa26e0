"""Job names in paths: a ``/`` inside a name arrives as ``%2F`` and must stay inside it.

Servers decode the path before routing, so ``/jobs/a%2Fb`` would route as
``/jobs/a/b`` (job ``a``, execution ``b``). :class:`KeepEncodedSlashes` routes on the
raw path instead: each segment is decoded by itself, and a ``/`` (or ``%``) it contains
is kept escaped, so the segment stays one path parameter; :func:`segment` undoes that
escaping in the route. Nothing else about the path changes.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send


def routing_path(raw_path: bytes) -> str:
    """The path to route on: segments decoded one by one, ``%`` and ``/`` in them escaped."""
    parts = raw_path.decode("latin-1").split("/")
    decoded = (urllib.parse.unquote(part, errors="replace") for part in parts)
    return "/".join(p.replace("%", "%25").replace("/", "%2F") for p in decoded)


def segment(routed: str) -> str:
    """A path parameter as the client meant it (undoes :func:`routing_path`'s escaping)."""
    return urllib.parse.unquote(routed) if "%" in routed else routed


class KeepEncodedSlashes:
    """ASGI middleware: route on :func:`routing_path` of the raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw: Any = scope.get("raw_path")
        if scope["type"] == "http" and isinstance(raw, bytes) and b"%" in raw:
            path = raw.split(b"?", 1)[0]
            if needs_routing_path(path, str(scope.get("path", ""))):
                scope = dict(scope, path=routing_path(path))
        await self.app(scope, receive, send)


def needs_routing_path(raw_path: bytes, decoded: str) -> bool:
    """Whether :func:`routing_path` of ``raw_path`` may differ from ``decoded``, the path
    as the server decoded it: only when an escaped ``/`` is in it, or a ``%`` is in what it
    decodes to (``%25``, or a ``%`` that starts no escape). Any other path routes as it is."""
    return "%" in decoded or b"%2f" in raw_path or b"%2F" in raw_path
