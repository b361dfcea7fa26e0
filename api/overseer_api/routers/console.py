"""``/console/``: the web console, static files that call the public API like any client.

The files live in ``overseer_api/console/`` (package data, so the wheel and the image
carry them). Only those files are served, looked up by name in a table read once from
the package: a path that names no packaged file (``..``, an encoded ``%2F``, a
sub-folder) is a 404 without ever reaching the file system. They hold no data, so they
need no token; every call the console makes is authenticated by the API as usual.

Each answer carries a strict Content-Security-Policy (scripts, styles and connections to
this origin only, no inline code, no framing), ``nosniff``, and an ``ETag`` with
``Cache-Control: no-cache``: a browser revalidates, so an upgraded API serves its own
console. The routes are left out of the OpenAPI document: they are no part of the API.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from overseer_api import errors, static_assets

PACKAGE_FOLDER = "console"
INDEX = "index.html"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    **static_assets.HEADERS,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


@functools.cache
def assets() -> Mapping[str, static_assets.Asset]:
    """Every servable file of the package's console folder, by file name (read once)."""
    return static_assets.load("overseer_api", PACKAGE_FOLDER)


@router.get("/console")
async def console_root() -> Response:
    """The console's address without its slash: on to ``console/`` (relative, so a
    proxy's path prefix is kept), where the files' relative links resolve."""
    return RedirectResponse("console/", status_code=308, headers=dict(SECURITY_HEADERS))


@router.api_route("/console/{file:path}", methods=["GET", "HEAD"])
async def console_file(request: Request, file: str) -> Response:
    """A packaged console file by its name (``index.html`` for ``/console/``); else 404.
    HEAD answers the same headers without the body."""
    asset = assets().get(file or INDEX)
    if asset is None:
        return errors.respond(
            404,
            "ConsoleFileNotFound",
            "the console has no such file; open /console/",
            headers=dict(SECURITY_HEADERS),
        )
    return static_assets.respond(request, asset, {**SECURITY_HEADERS, "Cache-Control": "no-cache"})
