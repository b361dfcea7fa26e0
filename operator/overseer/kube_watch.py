"""List-then-watch of one kind in one namespace (or the whole cluster), for
:meth:`overseer.kube.Kube.watch`.

The Kubernetes protocol, spoken over lightkube's own HTTP client (same server,
credentials and TLS): a paginated LIST gives a snapshot and its ``resourceVersion``;
a WATCH from that version streams every change after it. A watch that ends (the
server's timeout) resumes from the last version seen, bookmarks included; a version
the server no longer keeps (410 Gone, as an HTTP status or an ``ERROR`` event) starts
over with a new LIST. A watch silent for longer than its read timeout (the server
sends a bookmark every minute or so, so silence means a half-open connection) is
resumed from the last version too, on a new connection. Any other refusal is raised
as :class:`overseer.errors.KubeError` (with the HTTP status) for the caller to retry
with backoff.

What the iterator yields is ``(type, object)``: first ``("LIST", list)`` where ``list``
is the whole ``...List`` body (``items`` and ``metadata.resourceVersion``), which
replaces whatever the caller held; then ``("ADDED" | "MODIFIED" | "DELETED", object)``.
Another ``LIST`` follows every re-list.

``paged=True`` hands the snapshot over page by page instead, so that the caller never
holds all of it at once (10,000 OverseerJobs with their managedFields are about 60 MiB
of Python objects, and the memory such a burst takes is seldom given back):
``("LISTING", {})`` when a snapshot starts (again, if its continue token expired),
``("PAGE", {"items": [...]})`` for each page, then ``("LISTED", {"metadata": ...})``
when it is whole: what the caller held and no page of this snapshot named is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal, NoReturn

import httpx2

from overseer import errors
from overseer.core import backoff

log = logging.getLogger(__name__)

WatchType = Literal["LIST", "LISTING", "PAGE", "LISTED", "ADDED", "MODIFIED", "DELETED"]
WatchEvent = tuple[WatchType, dict[str, Any]]

PAGE_SIZE = 500
"""Objects per LIST page: 10,000 jobs come in 20 requests, none of them huge."""
WATCH_SECONDS = 290
"""How long the server keeps one WATCH open before the client resumes it."""
GONE = 410
"""The status of a resourceVersion (or continue token) the server no longer keeps."""


async def keep_following(
    watch: Callable[[], AsyncIterator[tuple[str, dict[str, Any]]]],
    take: Callable[[str, dict[str, Any]], None],
    what: str,
    *,
    retry: tuple[float, float],
) -> NoReturn:
    """Hand every event of ``watch()`` to ``take``, forever.

    A watch that fails (the server refuses or cannot be reached) is started again, from a
    LIST, after a backoff from ``retry[0]`` up to ``retry[1]`` seconds, back to the shortest
    once an event was taken. So is one whose ``take`` raised: a bug in handling one event
    must not end a watch that others wait on (the API's cache, the syncs' job index).
    ``what`` names it in the log. Cancel the task that runs it to stop it.
    """
    failures = 0
    while True:
        try:
            async for event, body in watch():
                take(event, body)
                failures = 0
        except errors.OverseerError as error:
            log.warning("watch of %s: %s", what, error)
        except Exception:
            log.exception("watch of %s failed", what)
        delay = backoff.delay(failures, first=retry[0], ceiling=retry[1])
        log.info("watch of %s: again in %gs", what, delay)
        failures += 1
        await asyncio.sleep(delay)


def collection_path(group: str, version: str, plural: str, namespace: str | None) -> str:
    """``/apis/<group>/<version>/namespaces/<ns>/<plural>`` (``/api/v1/...`` for core);
    ``/apis/<group>/<version>/<plural>`` (every namespace) when ``namespace`` is None."""
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace is None:
        return f"{prefix}/{plural}"
    return f"{prefix}/namespaces/{namespace}/{plural}"


async def follow(
    http: httpx2.AsyncClient,
    path: str,
    kind: str,
    api_version: str,
    limits: httpx2.Timeout,
    *,
    paged: bool = False,
) -> AsyncIterator[WatchEvent]:
    """LIST then WATCH ``path`` forever (see the module's docstring); ``limits.read``
    is the silence after which a WATCH is resumed on a new connection."""
    while True:
        version = ""
        async for event in _snapshot(http, path, kind, api_version, paged=paged):
            if event[0] in ("LIST", "LISTED"):
                version = str(event[1].get("metadata", {}).get("resourceVersion") or "")
            yield event
        try:
            while True:
                try:
                    async for kind_, obj in _watch(http, path, version, limits):
                        version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                        if kind_ != "BOOKMARK":  # a bookmark only moves the version on
                            yield kind_, obj
                except httpx2.ReadTimeout:
                    log.info("watch of %s: silent for %gs, watching again", path, limits.read)
        except errors.KubeError as error:
            if error.status != GONE:
                raise
            log.info("watch of %s: resourceVersion %s expired, listing again", path, version)


async def _snapshot(
    http: httpx2.AsyncClient, path: str, kind: str, api_version: str, *, paged: bool
) -> AsyncIterator[WatchEvent]:
    """Every object at ``path``: page by page (``paged``), else one ``LIST``."""
    items: list[dict[str, Any]] = []
    async for event, body in _pages(http, path):
        if event == "LISTING":
            items = []
        for item in body.get("items") or ():
            # List items of custom resources carry these; set them for any other kind.
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
        if paged:
            yield event, body
        elif event == "PAGE":
            items.extend(body["items"])
        elif event == "LISTED":
            yield "LIST", {**body, "items": items}


async def _pages(http: httpx2.AsyncClient, path: str) -> AsyncIterator[WatchEvent]:
    """``LISTING``, each ``PAGE``, ``LISTED``: one snapshot of ``path``."""
    params: dict[str, str | int] = {"limit": PAGE_SIZE}
    yield "LISTING", {}
    while True:
        response = await http.get(path, params=params)
        if response.status_code == GONE:
            # The continue token expired between pages: start the snapshot again.
            params = {"limit": PAGE_SIZE}
            yield "LISTING", {}
            continue
        body = _json(response, f"listing {path}")
        yield "PAGE", {"items": body.get("items") or []}
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            yield "LISTED", {"metadata": body.get("metadata") or {}}
            return
        params = {"limit": PAGE_SIZE, "continue": token}


async def _watch(
    http: httpx2.AsyncClient, path: str, version: str, limits: httpx2.Timeout
) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """One WATCH request from ``version``: its events, until the server ends it."""
    params: dict[str, str | int] = {
        "watch": 1,
        "resourceVersion": version,
        "allowWatchBookmarks": "true",
        "timeoutSeconds": WATCH_SECONDS,
    }
    async with http.stream("GET", path, params=params, timeout=limits) as response:
        if response.status_code == GONE:
            raise errors.KubeError(f"watching {path}: resourceVersion {version} expired", GONE)
        if response.is_error:
            await response.aread()
            _json(response, f"watching {path}")
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            event = json.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise errors.KubeError(f"watching {path}: {obj.get('message')}", obj.get("code"))
            if kind in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
                yield kind, obj


def _json(response: httpx2.Response, doing: str) -> dict[str, Any]:
    if response.is_error:
        message = response.text[:200]
        with contextlib.suppress(ValueError):
            message = str(response.json().get("message") or message)
        status = response.status_code
        raise errors.KubeError(f"{doing}: {message} (HTTP {status})", status)
    body: dict[str, Any] = response.json()
    return body
