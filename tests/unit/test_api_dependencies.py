"""Every dependency of every route is a coroutine: FastAPI runs a plain ``def`` dependency
in a worker thread, a thread hop each per request (bench/api.py measured GET /jobs/{name}
at a tenth of a bare endpoint's rate with a dozen of them)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from tests.support import api

from overseer import archive_local
from overseer_api import app, deps, settings


def routes(items: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, inside included routers too (FastAPI wraps them)."""
    for item in items:
        if isinstance(item, APIRoute):
            yield item
        elif hasattr(item, "original_router"):
            yield from routes(item.original_router.routes)


def calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from calls(dependency)


def test_no_route_depends_on_a_plain_function(tmp_path: Path) -> None:
    tokens = api.write_tokens(tmp_path / "t.json", {"r": ("t", ["read"])})
    application = app.create_app(
        settings.Settings(tokens_file=tokens), api.WatchFeed(), archive_local.LocalArchive(tmp_path)
    )
    threaded = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in routes(application.routes)
        for call in [*calls(route.dependant), deps.path_namespace]
        if not (inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(call.__call__))
    }
    assert len(list(routes(application.routes))) > 10
    assert threaded == set()
