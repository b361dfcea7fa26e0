"""Requests lightkube's API cannot make, sent through its own HTTP client.

:class:`overseer.kube.Kube` delegates here: a container log as raw bytes (lightkube's
``log()`` decodes text and splits lines on ``\\x1e``, the first byte of every
supervisor frame), and a DELETE with a ``resourceVersion`` precondition (lightkube's
``delete`` sends none). Both use the httpx client lightkube built (same server,
credentials and TLS; ``docs/decisions.rst`` names that private part), and wrap every
failure in :class:`overseer.errors.KubeError` as ``kube.py`` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2

from overseer import errors


def status_message(response: httpx2.Response) -> str:
    """The ``message`` of a Kubernetes Status body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text[:200]


def _failed(doing: str, response: httpx2.Response) -> errors.KubeError:
    message = status_message(response)
    return errors.KubeError(
        f"{doing}: {message} (HTTP {response.status_code})", response.status_code
    )


async def follow_log(
    http: httpx2.AsyncClient, namespace: str, pod: str, container: str
) -> AsyncIterator[bytes]:
    """The container's log from its start, following it, as raw bytes chunks.

    Ends when the container has ended and its whole log was sent (or the API server
    closes the stream: the caller reads again). A streamed GET, never with
    ``timestamps``.
    """
    doing = f"following the log of pod {namespace}/{pod}"
    url = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
    params = {"container": container, "follow": "true"}
    timeout = httpx2.Timeout(30.0, read=None)  # a quiet job writes nothing for hours
    try:
        async with http.stream("GET", url, params=params, timeout=timeout) as response:
            if response.is_error:
                await response.aread()
                raise _failed(doing, response)
            async for chunk in response.aiter_bytes():
                yield chunk
    except httpx2.HTTPError as error:
        raise errors.KubeError(f"{doing}: {error}") from None


async def delete_unchanged(
    http: httpx2.AsyncClient, path: str, resource_version: str, doing: str
) -> bool:
    """DELETE ``path`` only if the object is still at ``resource_version``.

    False when it changed or is gone; raises :class:`errors.KubeError` for any other
    failure, ``doing`` saying what was being done.
    """
    options = {"preconditions": {"resourceVersion": resource_version}}
    try:
        response = await http.request("DELETE", path, json=options)
    except httpx2.HTTPError as error:
        raise errors.KubeError(f"{doing}: {error}") from None
    if response.status_code in {404, 409}:
        return False
    if response.is_error:
        raise _failed(doing, response)
    return True
