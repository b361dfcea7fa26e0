"""Packaged files served by name: the web console's, and Swagger UI's for ``/docs``.

A folder of a Python package is read once into a table; a request names a file of that
table or gets a 404, so no path of a request ever reaches the file system. Each answer
carries an ``ETag``; a browser that revalidates (``If-None-Match``) gets a 304, and a
HEAD the headers of the GET without the body.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Mapping
from importlib import resources

from fastapi import Request, Response

CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
"""What is served, by suffix; a packaged file of any other kind is not."""
HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
"""On every page and file: no type sniffing, no framing, no address sent elsewhere."""


@dataclasses.dataclass(frozen=True)
class Asset:
    """One packaged file, as served."""

    body: bytes
    content_type: str
    etag: str


def load(package: str, folder: str, names: Collection[str] | None = None) -> Mapping[str, Asset]:
    """The servable files of ``package``'s ``folder`` (only ``names``, when given), by name."""
    found: dict[str, Asset] = {}
    for entry in resources.files(package).joinpath(folder).iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        wanted = names is None or entry.name in names
        if wanted and entry.is_file() and suffix in CONTENT_TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            found[entry.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return found


def respond(request: Request, asset: Asset, headers: Mapping[str, str]) -> Response:
    """``asset`` with ``headers`` and its ETag: 304 when the browser has it, no body on HEAD."""
    headers = {**headers, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(asset.body))
        return Response(media_type=asset.content_type, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)
