"""A connection to the API server that goes silent without closing (half-open) is given up.

A loopback API server (aiohttp) behind a loopback TCP proxy (``tests/support/tcp_proxy``)
that stops forwarding on the open connections without closing them, as a dropped NAT
entry or a vanished API server host does. The log follower and the watch each notice
the silence within their read timeout, connect again and go on where they were; the
connections carry TCP keepalive, so a dead peer is also found by the kernel.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from overseer import archive_local, kube
from overseer.operator import context, output
from overseer.operator.settings import Settings
from overseer_library import protocol
from tests.support import chaos, tcp_proxy

pytestmark = pytest.mark.timeout(60)

READ_TIMEOUT = 1.5
"""The client's read timeout in these tests (seconds); the defaults are minutes."""
WITHIN = READ_TIMEOUT + 3.0
"""How soon after the freeze the client must be reading again: its timeout, plus slack."""
KEY = context.Key("ns", "chaos-1")
POD = "chaos-1-pod"
BEFORE = protocol.encode(protocol.Start(1, 7, "sh", 1795938122.5)) + protocol.encode(
    protocol.Output(2, "stdout", b"before the silence\n")
)
AFTER = protocol.encode(protocol.Output(3, "stdout", b"after it\x00\xff")) + protocol.encode(
    protocol.Exit(4, code=0, signal=None, time=1795938124.0)
)
EXECUTIONS = "/apis/overseer.dev/v1alpha1/namespaces/ns/overseerexecutions"


@dataclass
class Server:
    """What the fake API server was asked, and a way to hold its first answers open."""

    logs: int = 0
    lists: int = 0
    watches: list[str] = field(default_factory=list)
    first_sent: asyncio.Event = field(default_factory=asyncio.Event)


def running_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": "ns"},
        "spec": {"containers": [{"name": "job", "image": "library"}]},
        "status": {
            "containerStatuses": [
                {
                    **{"name": "job", "image": "library", "imageID": "", "ready": True},
                    **{"restartCount": 0, "state": {"running": {}}},
                }
            ]
        },
    }


def not_found() -> web.Response:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
    body = json.dumps({**status, "reason": "NotFound", "message": "gone"}).encode()
    # lightkube reads a Status only with exactly this Content-Type (no charset)
    return web.Response(body=body, status=404, headers={"Content-Type": "application/json"})


def execution(version: int) -> dict[str, Any]:
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerExecution",
        "metadata": {"name": f"x{version}", "namespace": "ns", "resourceVersion": str(version)},
    }


def app_for(server: Server) -> web.Application:
    async def log(request: web.Request) -> web.StreamResponse:
        server.logs += 1
        response = web.StreamResponse()
        await response.prepare(request)
        if server.logs == 1:  # the first reading: a part, then (the proxy frozen) the rest
            await response.write(BEFORE)
            server.first_sent.set()
            await asyncio.sleep(0.5)
            await response.write(AFTER)  # never forwarded: the connection is silent
            await asyncio.sleep(3600)
        await response.write(BEFORE + AFTER)  # read again: all of it, then the end
        return response

    async def pod(request: web.Request) -> web.Response:
        return web.json_response(running_pod())

    async def executions(request: web.Request) -> web.StreamResponse:
        if "watch" not in request.query:
            server.lists += 1
            return web.json_response({"items": [], "metadata": {"resourceVersion": "1"}})
        server.watches.append(request.query.get("resourceVersion", ""))
        response = web.StreamResponse()
        await response.prepare(request)
        version = len(server.watches) + 1
        event = {"type": "ADDED", "object": execution(version)}
        await response.write(json.dumps(event).encode() + b"\n")
        server.first_sent.set()
        await asyncio.sleep(3600)
        return response

    async def missing(request: web.Request) -> web.Response:
        return not_found()

    app = web.Application()
    app.router.add_get(f"/api/v1/namespaces/ns/pods/{POD}/log", log)
    app.router.add_get(f"/api/v1/namespaces/ns/pods/{POD}", pod)
    app.router.add_get(EXECUTIONS, executions)
    app.router.add_route("*", "/{tail:.*}", missing)
    return app


@dataclass
class Setup:
    server: Server
    proxy: tcp_proxy.Proxy
    client: kube.Kube


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    server = Server()
    runner = web.AppRunner(app_for(server), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with tcp_proxy.serve(port) as proxy:
        config = tmp_path / "kubeconfig"
        cluster = {"server": proxy.url}
        config.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": cluster}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )
        timeouts = kube.Timeouts(request=5.0, log_read=READ_TIMEOUT, watch_read=READ_TIMEOUT)
        client = kube.Kube.connect(str(config), timeouts=timeouts)
        try:
            yield Setup(server, proxy, client)
        finally:
            await client.close()
    await runner.cleanup()


async def test_a_followed_log_gone_silent_is_read_again_within_its_read_timeout(
    setup: Setup, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Given a follower reading a running pod's log through the proxy
    store = archive_local.LocalArchive(tmp_path / "archive")
    followers = output.Followers(store, retry_min=0.05, retry_max=0.1)
    env = context.Environment(
        client=setup.client,
        settings=Settings(retry_min=0.05, retry_max=0.1),
        tracker=context.Tracker(),
        post_event=lambda *_: None,
    )
    followers.notice(KEY, running_pod(), env)
    await asyncio.wait_for(setup.server.first_sent.wait(), 10)
    # When the connection goes silent, open, in the middle of the log
    setup.proxy.freeze()
    frozen_at = time.monotonic()
    # Then the follower gives it up within its read timeout, reads the log again, and
    # archives each byte once
    await asyncio.wait_for(asyncio.gather(*followers.running()), WITHIN)
    took = time.monotonic() - frozen_at
    archived = store.read(KEY.namespace, KEY.name, "stdout")
    lost = {"bytes lost": int(archived != b"before the silence\nafter it\x00\xff")}
    chaos.record(request.config, "half-open log stream", f"1, back in {took:.1f}s", lost)
    assert took >= READ_TIMEOUT
    assert setup.server.logs == 2
    assert store.read(KEY.namespace, KEY.name, "stdout") == b"before the silence\nafter it\x00\xff"
    writer = store.open_writer(KEY.namespace, KEY.name)
    assert (writer.pod, writer.last_seq, writer.complete) == (POD, 4, True)
    writer.close()
    await followers.close()


async def test_a_watch_gone_silent_resumes_from_its_last_version_within_its_read_timeout(
    setup: Setup, request: pytest.FixtureRequest
) -> None:
    # Given a watch that has listed and seen one change
    events = setup.client.watch("OverseerExecution", "ns")
    kind, listed = await asyncio.wait_for(anext(events), 10)
    assert (kind, listed["items"]) == ("LIST", [])
    kind, first = await asyncio.wait_for(anext(events), 10)
    assert (kind, first["metadata"]["name"]) == ("ADDED", "x2")
    # When its connection goes silent, open
    setup.proxy.freeze()
    frozen_at = time.monotonic()
    # Then within its read timeout it watches again from the last version it saw (no
    # second LIST), and the next change arrives
    kind, second = await asyncio.wait_for(anext(events), WITHIN)
    took = time.monotonic() - frozen_at
    lost = {"events lost": int(second["metadata"]["name"] != "x3")}
    chaos.record(request.config, "half-open watch", f"1, back in {took:.1f}s", lost)
    assert (kind, second["metadata"]["name"]) == ("ADDED", "x3")
    assert took >= READ_TIMEOUT
    assert setup.server.watches == ["1", "2"]
    assert setup.server.lists == 1
    await events.aclose()


async def test_connections_to_the_api_server_carry_tcp_keepalive(setup: Setup) -> None:
    # When the client holds a connection open (a watch)
    events = setup.client.watch("OverseerExecution", "ns")
    await asyncio.wait_for(anext(events), 10)
    await asyncio.wait_for(anext(events), 10)
    # Then the kernel probes it (ss shows a keepalive timer on the client's socket)
    command = ["ss", "-tnoH", "state", "established", f"( dport = :{setup.proxy.port} )"]
    sockets = (
        await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
    ).stdout
    assert sockets.strip(), "no connection to the proxy"
    assert all("keepalive" in line for line in sockets.splitlines()), sockets
    await events.aclose()
