"""``/docs``: Swagger UI for the API's OpenAPI document, with every file from this API.

FastAPI's page loaded Swagger UI from a CDN: on a cluster without internet access it
stayed blank. Requests go through the ASGI app; ``test_console_browser`` renders the
page in Chromium with every other origin blocked.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from overseer import archive_local
from overseer_api import app as app_
from overseer_api import settings
from tests.support import api


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    tokens = api.write_tokens(
        tmp_path / "tokens.json", {"ci": ("docs-reader-token-1234", ["read"])}
    )
    app: FastAPI = app_.create_app(
        settings.Settings(tokens_file=tokens),
        api.WatchFeed(),
        archive_local.LocalArchive(tmp_path / "archive"),
    )
    async with api.client_of(app, "docs-reader-token-1234") as served:
        del served.headers["Authorization"]  # a browser opens the page without a token
        yield served


def linked(page: str) -> list[str]:
    """Every address the page loads: scripts, styles, icons, and the OpenAPI document."""
    return re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)


async def test_the_page_loads_swagger_ui_and_the_openapi_document_from_this_api(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    addresses = linked(page.text)
    assert "/openapi.json" in addresses
    assert all(a.startswith("/") and not a.startswith("//") for a in addresses), addresses
    types = {
        "/docs/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
        "/docs/swagger-ui.css": "text/css; charset=utf-8",
        "/docs/favicon.png": "image/png",
    }
    assert set(types) <= set(addresses), addresses
    for address, content_type in types.items():
        served = await client.get(address)
        assert served.status_code == 200, address
        assert served.headers["content-type"] == content_type
        assert served.headers["x-content-type-options"] == "nosniff"
        again = await client.get(address, headers={"If-None-Match": served.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
    bundle = (await client.get("/docs/swagger-ui-bundle.js")).text
    # Swagger UI 5: version 4 cannot render the OpenAPI 3.1 document FastAPI writes
    assert re.search(r'"5\.\d+\.\d+"', bundle), "not Swagger UI 5"
    assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.1")


async def test_behind_a_proxys_path_prefix_the_links_keep_it(tmp_path: Path) -> None:
    tokens = api.write_tokens(
        tmp_path / "tokens.json", {"ci": ("docs-reader-token-1234", ["read"])}
    )
    app = app_.create_app(
        settings.Settings(tokens_file=tokens),
        api.WatchFeed(),
        archive_local.LocalArchive(tmp_path / "archive"),
    )
    transport = httpx.ASGITransport(app=app, root_path="/overseer")
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        page = await client.get("/docs")
    assert page.status_code == 200
    addresses = linked(page.text)
    assert "/overseer/openapi.json" in addresses
    assert "/overseer/docs/swagger-ui-bundle.js" in addresses


async def test_a_file_swagger_ui_does_not_have_is_a_404_problem(client: httpx.AsyncClient) -> None:
    for path in ("/docs/redoc.standalone.js", "/docs/..%2F__init__.py", "/docs/nope.js"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert "open /docs" in response.json()["detail"]
