"""The web console's files, served by the API at /console/: only the packaged files, each
with its content type, a strict Content-Security-Policy and nosniff; no token needed;
paths that climb out (``..``, encoded or not) are 404s; the API's OpenAPI document does
not list them.

Requests go through the ASGI app; the paths a client library would normalise (a bare
``..``) are sent as a server receives them, in a raw ASGI scope.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from overseer import archive_local
from overseer_api import app as app_
from overseer_api import settings, static_assets
from overseer_api.routers import console
from tests.support import api

TOKEN = "console-reader-token-1234"
FOLDER = Path(app_.__file__).parent / "console"
EXPECTED_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "main.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    tokens = api.write_tokens(tmp_path / "tokens.json", {"ci": (TOKEN, ["read"])})
    app = app_.create_app(
        settings.Settings(tokens_file=tokens),
        api.WatchFeed(),
        archive_local.LocalArchive(tmp_path / "archive"),
    )
    async with api.client_of(app, TOKEN) as client:
        # No token: the files hold no data, and a browser fetches them without one.
        del client.headers["Authorization"]
        yield app, client


async def raw_get(app: FastAPI, raw_path: bytes) -> tuple[int, dict[str, str], bytes]:
    """GET ``raw_path`` as a server hands it to the app: decoded, never normalised."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": urllib.parse.unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api.test")],
        "server": ("api.test", 80),
        "client": ("127.0.0.1", 1234),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


def assert_secured(headers: httpx.Headers | dict[str, str]) -> None:
    policy = headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers["x-content-type-options"] == "nosniff"


async def test_each_file_is_served_with_its_type_and_the_security_headers(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    for name, content_type in EXPECTED_TYPES.items():
        response = await client.get(f"/console/{name}")
        assert response.status_code == 200, (name, response.text[:200])
        assert response.headers["content-type"] == content_type
        assert response.content == (FOLDER / name).read_bytes()
        assert_secured(response.headers)
    index = await client.get("/console/")
    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert index.content == (FOLDER / "index.html").read_bytes()
    assert_secured(index.headers)


async def test_every_module_the_console_imports_is_served_as_javascript(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    index = (await client.get("/console/")).text
    pending = re.findall(r'<script type="module" src="([^"]+)"', index)
    assert pending == ["main.js"]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        response = await client.get(f"/console/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        pending += [m.removeprefix("./") for m in re.findall(r'from "(\./[^"]+)"', response.text)]
    assert seen == {p.name for p in FOLDER.glob("*.js")}


async def test_a_head_request_gets_the_headers_of_the_get_without_a_body(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    # (What `curl -I` and uptime checks send: a 405 there reads as the console missing.)
    _, client = served
    got = await client.get("/console/")
    head = await client.head("/console/")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["etag"] == got.headers["etag"]
    assert head.headers["content-type"] == got.headers["content-type"]
    assert_secured(head.headers)
    assert (await client.head("/console/nope.js")).status_code == 404


async def test_the_console_root_redirects_to_its_folder(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    response = await client.get("/console")
    assert response.status_code == 308
    assert response.headers["location"] == "console/"


async def test_a_file_not_changed_since_is_a_304(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    first = await client.get("/console/main.js")
    assert first.headers["cache-control"] == "no-cache"
    again = await client.get("/console/main.js", headers={"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/console/../app.py",
        b"/console/../../pyproject.toml",
        b"/console/%2e%2e/app.py",
        b"/console/%2E%2E%2Fapp.py",
        b"/console/..%2fapp.py",
        b"/console/..%5capp.py",
        b"/console/%252e%252e%252fapp.py",
        b"/console/%2e%2e%2f%2e%2e%2frouters%2fconsole.py",
        b"/console//etc/passwd",
        b"/console/%2fetc%2fpasswd",
        b"/console/./index.html",
        b"/console/main.js/../../app.py",
        b"/console/__init__.py",
        b"/console/nope.js",
        b"/console/index.html%00.js",
    ],
)
async def test_only_the_packaged_files_are_served(
    served: tuple[FastAPI, httpx.AsyncClient], raw_path: bytes
) -> None:
    app, _ = served
    status, headers, body = await raw_get(app, raw_path)
    assert status == 404, (raw_path, body[:200])
    assert headers["content-type"] == "application/problem+json"
    assert b"import" not in body and b"root:" not in body
    assert_secured(headers)


async def test_the_console_is_no_part_of_the_openapi_document(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    document = (await client.get("/openapi.json")).json()
    assert [p for p in document["paths"] if "console" in p] == []
    assert "/jobs" in document["paths"]


async def test_data_routes_still_need_a_token(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    assert (await client.get("/console/")).status_code == 200
    assert (await client.get("/jobs")).status_code == 401


def test_the_served_files_are_the_folder_s_files() -> None:
    served = set(console.assets())
    assert served == {p.name for p in FOLDER.iterdir() if p.suffix in static_assets.CONTENT_TYPES}
    assert set(EXPECTED_TYPES) <= served
