"""Requests lightkube's API cannot make, sent through its own HTTP client.

:class:`overseer.kube.Kube` delegates here: a container log as raw bytes (lightkube's
``log()`` decodes text and splits lines on ``\\x1e``, the first byte of every
supervisor frame) and a DELETE with a ``resourceVersion`` precondition (lightkube's
``delete`` sends none). They use the httpx client lightkube built (same server,
credentials and TLS; ``docs/decisions.rst`` names that private part), and wrap every
failure in :class:`overseer.errors.KubeError` as ``kube.py`` does (:func:`refused`,
which :mod:`overseer.kube_apply` shares for the sync's applies). And how every
connection to the API server is made: :class:`Timeouts`, TCP keepalive (:func:`transport`).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
from collections.abc import AsyncIterator

import httpx2

from overseer import errors


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """How long the client waits on the API server, in seconds.

    Every connection also carries TCP keepalive (:data:`KEEPALIVE`): a peer that vanished
    is found by the kernel within about a minute, whatever the read timeouts.
    """

    request: float = 30.0
    """Connecting, and each read of an ordinary request."""
    log_read: float = 300.0
    """Silence on a followed container log before it is given up and read again (from its
    start: what was archived already is skipped). A job quiet for longer costs one more
    reading of its log; a half-open connection costs no more than this."""
    watch_read: float = 120.0
    """Silence on a watch before it is resumed from its last version (the API server
    sends a bookmark every minute or so on a quiet watch)."""


KEEPALIVE: list[tuple[int, int, int]] = [
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3),
]
"""Probe an idle connection after 30 s, every 10 s, and give it up after 3 unanswered."""


def transport(verify: ssl.SSLContext) -> httpx2.AsyncHTTPTransport:
    """The transport of every connection to the API server: TLS as given, TCP keepalive."""
    return httpx2.AsyncHTTPTransport(verify=verify, socket_options=KEEPALIVE)


def body_message(body: bytes) -> str:
    """The ``message`` of a Kubernetes Status ``body``, else the start of the body."""
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return body[:200].decode(errors="replace")


def refused(doing: str, status: int, body: bytes, retry_after: str = "") -> errors.KubeError:
    """The error of an answer with HTTP ``status`` >= 400: its Status message, and the
    seconds of its ``Retry-After`` header (429, 503); 422 is an invalid object."""
    text = f"{doing}: {body_message(body)} (HTTP {status})"
    if status == 422:
        return errors.KubeInvalidObjectError(text, 422)
    seconds = float(retry_after.strip()) if retry_after.strip().isdigit() else None
    return errors.KubeError(text, status, seconds)


def _failed(doing: str, response: httpx2.Response) -> errors.KubeError:
    retry_after = response.headers.get("Retry-After", "")
    return refused(doing, response.status_code, response.content, retry_after)


APPLY_PATCH = "application/apply-patch+yaml"
"""A server-side apply's content type (its JSON body is YAML too)."""


async def follow_log(
    http: httpx2.AsyncClient, namespace: str, pod: str, container: str, limits: httpx2.Timeout
) -> AsyncIterator[bytes]:
    """The container's log from its start, following it, as raw bytes chunks.

    Ends when the container has ended and its whole log was sent (or the API server
    closes the stream: the caller reads again). A streamed GET, never with
    ``timestamps``. A stream silent for longer than ``limits.read`` is given up
    (:class:`errors.KubeError`): it may be a half-open connection that would never
    say more, and the caller reads the log again.
    """
    doing = f"following the log of pod {namespace}/{pod}"
    url = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
    params = {"container": container, "follow": "true"}
    try:
        async with http.stream("GET", url, params=params, timeout=limits) as response:
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
