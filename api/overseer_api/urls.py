"""The API's own URLs for jobs and executions, as clients reach them.

A job's path is its display name URL-encoded whole (``/jobs/A%20job``, a ``/`` as
``%2F``); a namespace other than the default is served under ``/namespaces/<ns>``.
"""

from __future__ import annotations

import urllib.parse

from fastapi import Request


def base(request: Request) -> str:
    """``public_url`` when set, else the URL the request came to, without a trailing /."""
    public = request.app.state.overseer.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def prefix(request: Request, namespace: str) -> str:
    if namespace == request.app.state.overseer.settings.namespace:
        return base(request)
    return f"{base(request)}/namespaces/{namespace}"


def job(request: Request, namespace: str, display_name: str) -> str:
    return f"{prefix(request, namespace)}/jobs/{urllib.parse.quote(display_name, safe='')}"


def execution(request: Request, namespace: str, display_name: str, execution_id: str) -> str:
    return f"{job(request, namespace, display_name)}/{execution_id}"
