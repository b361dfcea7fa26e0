"""The API's own URLs for jobs and executions, as clients reach them.

A job's path is its display name URL-encoded whole (``/jobs/A%20job``, a ``/`` as
``%2F``); a namespace other than the default is served under ``/namespaces/<ns>``.
"""

from __future__ import annotations

import urllib.parse

from fastapi import Request

_BASES: dict[tuple[object, ...], str] = {}
MAX_BASES = 256
"""Base URLs kept (they follow the Host header, which any client chooses)."""


def base(request: Request) -> str:
    """``public_url`` when set, else the URL the request came to, without a trailing /."""
    public: str | None = request.app.state.overseer.settings.public_url
    if public:
        return public.rstrip("/")
    # Starlette builds request.base_url anew on each request: keep it by what it is
    # made of (the scheme, the Host header, the server address and the root path).
    scope = request.scope
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    roots = (scope.get("app_root_path"), scope.get("root_path"))
    server = scope.get("server")  # a tuple by the ASGI spec; some test clients give a list
    key = (scope.get("scheme"), host, None if server is None else tuple(server), roots)
    found = _BASES.get(key)
    if found is None:
        if len(_BASES) >= MAX_BASES:
            _BASES.clear()
        found = _BASES[key] = str(request.base_url).rstrip("/")
    return found


def prefix(request: Request, namespace: str) -> str:
    if namespace == request.app.state.overseer.settings.namespace:
        return base(request)
    return f"{base(request)}/namespaces/{namespace}"


def job(request: Request, namespace: str, display_name: str) -> str:
    return f"{prefix(request, namespace)}/jobs/{urllib.parse.quote(display_name, safe='')}"


def execution(request: Request, namespace: str, display_name: str, execution_id: str) -> str:
    return f"{job(request, namespace, display_name)}/{execution_id}"
