"""Requests lightkube's API cannot make, sent through its own HTTP client.

:class:`overseer.kube.Kube` delegates here: a container log as raw bytes (lightkube's
``log()`` decodes text and splits lines on ``\\x1e``, the first byte of every
supervisor frame), a DELETE with a ``resourceVersion`` precondition (lightkube's
``delete`` sends none), and a server-side apply of a body encoded once, whose answer
is not decoded (the sync's thousands of writes). They use the httpx client lightkube
built (same server, credentials and TLS; ``docs/decisions.rst`` names that private
part), and wrap every failure in :class:`overseer.errors.KubeError` as ``kube.py`` does.
And how every connection to the API server is made: :class:`Timeouts`, TCP keepalive
(:func:`transport`).
"""

from __future__ import annotations

import dataclasses
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
    text = f"{doing}: {message} (HTTP {response.status_code})"
    if response.status_code == 422:
        return errors.KubeInvalidObjectError(text, 422)
    retry_after = response.headers.get("Retry-After", "").strip()
    seconds = float(retry_after) if retry_after.isdigit() else None
    return errors.KubeError(text, response.status_code, seconds)


APPLY_PATCH = "application/apply-patch+yaml"
"""A server-side apply's content type (its JSON body is YAML too)."""


async def apply_encoded(
    http: httpx2.AsyncClient, path: str, data: bytes, *, field_manager: str, force: bool, doing: str
) -> None:
    """Server-side apply of a body already encoded (PATCH ``path``); the answer (the whole
    object) is read but not decoded: the caller does not need it.

    Raises :class:`errors.KubeError` (with the status and ``Retry-After``) when refused,
    :class:`errors.KubeInvalidObjectError` for 422, ``doing`` saying what was being done.
    """
    params = {"fieldManager": field_manager, "force": "true" if force else "false"}
    try:
        response = await http.request(
            "PATCH", path, content=data, params=params, headers={"Content-Type": APPLY_PATCH}
        )
    except httpx2.HTTPError as error:
        raise errors.KubeError(f"{doing}: {error}") from None
    if response.is_error:
        raise _failed(doing, response)


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
