"""pods/exec over WebSocket, for :meth:`overseer.kube.Kube.exec_in_pod`.

lightkube has no exec, so the call is a WebSocket (``v5.channel.k8s.io``, else
``v4``) through aiohttp with lightkube's own TLS context and credentials: the
channels it carries (stdout 1, stderr 2, the closing Status 3), the headers
lightkube's auth would send, and what the Status says about the exit code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import httpx2
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import SingleConfig

from overseer import errors

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
"""Subprotocols of pods/exec over WebSocket: both end with a Status on channel 3."""
EXEC_OUTPUT_LIMIT = 64 * 1024
"""Bytes of stdout, and of stderr, an exec keeps; the rest is read and discarded."""
EXEC_MESSAGE_LIMIT = 1024 * 1024
"""Largest WebSocket message accepted (the API server sends a few KiB at a time)."""


@dataclasses.dataclass(frozen=True)
class ExecResult:
    """How a command run with :meth:`Kube.exec_in_pod` ended."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    message: str = ""
    truncated: bool = False
    """stdout or stderr went past :data:`EXEC_OUTPUT_LIMIT`: the rest was discarded."""


def parse_exec_status(data: bytes) -> tuple[int | None, str]:
    """The exit code and message in the Status an exec ends with (channel 3).

    ``Success`` is code 0; ``NonZeroExitCode`` carries the code in its ``ExitCode``
    cause; any other failure (the command could not start, the container is gone) or
    no Status at all is ``None`` with the reason.
    """
    if not data.strip():
        return None, "the API server closed the stream without an exit status"
    try:
        status = json.loads(data)
    except ValueError:
        return None, data.decode(errors="replace")[:500]
    if not isinstance(status, dict):
        return None, data.decode(errors="replace")[:500]
    if status.get("status") == "Success":
        return 0, ""
    message = str(status.get("message") or status.get("reason") or "the command failed")
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or ():
            if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
                return int(cause["message"]), message
    return None, message


async def read_channels(
    url: str, params: Sequence[tuple[str, str]], headers: Mapping[str, str], ssl: Any
) -> tuple[dict[int, bytearray], bool]:
    """What an exec WebSocket sent on stdout (1), stderr (2) and its status (3), each cut
    at :data:`EXEC_OUTPUT_LIMIT`; and whether anything was cut.

    A command in a job's image is the job author's: it may write without end. Memory
    stays bounded (one message, then the kept bytes); the stream is still read to its
    end, where the status comes, within the caller's time limit.
    """
    output: dict[int, bytearray] = {1: bytearray(), 2: bytearray(), 3: bytearray()}
    truncated = False
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            url,
            params=list(params),
            headers=dict(headers),
            ssl=ssl,
            protocols=EXEC_PROTOCOLS,
            max_msg_size=EXEC_MESSAGE_LIMIT,
        ) as ws,
    ):
        async for frame in ws:
            if frame.type == aiohttp.WSMsgType.BINARY and frame.data:
                kept = output.get(frame.data[0])
                if kept is not None:
                    room = EXEC_OUTPUT_LIMIT - len(kept)
                    truncated = truncated or len(frame.data) - 1 > room
                    kept += frame.data[1 : 1 + max(room, 0)]
            elif frame.type == aiohttp.WSMsgType.ERROR:
                raise aiohttp.ClientError(f"the exec stream failed: {ws.exception()}")
    return output, truncated


async def auth_headers(auth: httpx2.Auth | None, url: str) -> dict[str, str]:
    """The headers lightkube's auth would add to a request to ``url`` (its first try)."""
    if auth is None:
        return {}
    flow = auth.async_auth_flow(httpx2.Request("GET", url))
    try:
        request = await flow.__anext__()
    finally:
        await flow.aclose()
    value = request.headers.get("Authorization")
    return {"Authorization": value} if value else {}


def handshake_message(error: aiohttp.WSServerHandshakeError) -> str:
    if error.status == 404:
        return "the pod does not exist (HTTP 404)"
    if error.status == 403:
        return (
            "forbidden (HTTP 403): the operator's ServiceAccount needs create and get on "
            "pods/exec in this namespace"
        )
    return f"{error.message or 'the WebSocket upgrade was refused'} (HTTP {error.status})"


async def run(
    config: SingleConfig | None,
    namespace: str,
    pod: str,
    container: str,
    command: Sequence[str],
    *,
    within: float,
) -> ExecResult:
    """Run ``command`` in ``pod``'s ``container`` with lightkube's ``config``; how it ended.

    Raises :class:`~overseer.errors.KubeError` when the command could not be run at all,
    or did not end ``within`` seconds.
    """
    doing = f"running {command[0]} in pod {namespace}/{pod}"
    if config is None or config.user is None:
        raise errors.KubeError(f"{doing}: no cluster configuration")
    url = f"{config.cluster.server.rstrip('/')}/api/v1/namespaces/{namespace}/pods/{pod}/exec"
    params = [("container", container), ("stdout", "true"), ("stderr", "true")]
    params += [("command", part) for part in command]
    ssl = client_adapter.verify_cluster(config.cluster, config.user, config.abs_file)
    try:
        headers = await auth_headers(client_adapter.user_auth(config.user), url)
        async with asyncio.timeout(within):
            output, truncated = await read_channels(url, params, headers, ssl)
    except aiohttp.WSServerHandshakeError as error:
        raise errors.KubeError(f"{doing}: {handshake_message(error)}", error.status) from None
    except (aiohttp.ClientError, OSError, httpx2.HTTPError) as error:
        raise errors.KubeError(f"{doing}: {error}") from None
    except TimeoutError:
        raise errors.KubeError(f"{doing}: no answer within {within:g}s") from None
    code, message = parse_exec_status(bytes(output[3]))
    if code is None:
        raise errors.KubeError(f"{doing}: {message}")
    return ExecResult(code, bytes(output[1]), bytes(output[2]), message, truncated)
