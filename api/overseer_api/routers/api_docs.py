"""``/docs``: the API's browsable reference (Swagger UI), with nothing from the internet.

FastAPI's own page loads Swagger UI from a CDN, which a cluster without internet access
(or a browser behind a strict proxy) cannot reach: the page stayed blank. This one loads
the Swagger UI files the ``fastapi-offline`` package carries (Swagger UI 5, which
renders this API's OpenAPI 3.1), served from ``/docs/`` by name
(:mod:`overseer_api.static_assets`). Its links are relative to the root path a proxy
names, like the OpenAPI document's. Nothing here needs a token; "Authorize" takes one
for the calls the page makes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html

from overseer_api import errors, static_assets

PACKAGE = "fastapi_offline"
FOLDER = "static"
FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
HEADERS = static_assets.HEADERS

router = APIRouter(include_in_schema=False)


@functools.cache
def assets() -> Mapping[str, static_assets.Asset]:
    """Swagger UI's files, by name (read once)."""
    return static_assets.load(PACKAGE, FOLDER, FILES)


@router.api_route("/docs", methods=["GET", "HEAD"])
async def swagger_ui(request: Request) -> Response:
    """The Swagger UI page for ``/openapi.json``."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}/docs/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/favicon.png",
    )
    page.headers.update(HEADERS)
    return page


@router.api_route("/docs/{file}", methods=["GET", "HEAD"])
async def swagger_ui_file(request: Request, file: str) -> Response:
    """One of Swagger UI's files; else 404."""
    asset = assets().get(file)
    if asset is None:
        return errors.respond(
            404, "DocsFileNotFound", "no such file; open /docs", headers=dict(HEADERS)
        )
    # Swagger UI changes only with the package: a day's caching spares every page load.
    return static_assets.respond(request, asset, {**HEADERS, "Cache-Control": "max-age=86400"})
