"""The sync's applies (``Kube.apply_encoded`` over aiohttp) against a loopback API server.

A real HTTP server on loopback (aiohttp) stands in for the API server, so each answer
can be chosen: the request as the API server reads it, a refusal surfaced with its
status and ``Retry-After`` (and sent again by the sync's writes), a rotated token file
read again after a 401, a silent server given up after the request timeout, TCP
keepalive on the connections and none left open after ``close``. The same path against
the real API server, with client certificates and with a token: ``tests/e2e/test_bulk_apply.py``.
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

from overseer import errors, kube
from overseer.core import sync, write_pacing
from overseer.operator import repository_writes

pytestmark = pytest.mark.timeout(30)

PATH = "/apis/overseer.dev/v1alpha1/namespaces/ns/overseerjobs/nightly"
BODY = b'{"apiVersion":"overseer.dev/v1alpha1","kind":"OverseerJob"}'


@dataclass
class Server:
    """The answers to give (status, Retry-After) in turn, then 200; what was asked."""

    answers: list[tuple[int, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=lambda: {"t"})
    silent: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)


def app_for(server: Server) -> web.Application:
    async def patch(request: web.Request) -> web.Response:
        server.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "type": request.headers.get("Content-Type"),
                "authorization": request.headers.get("Authorization"),
                "body": await request.read(),
                "time": time.monotonic(),
            }
        )
        if server.silent:
            await asyncio.sleep(30)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in server.tokens:
            return status(401, "Unauthorized")
        if server.answers:
            code, retry_after = server.answers.pop(0)
            headers = {"Retry-After": retry_after} if retry_after else {}
            return status(code, f"refused with {code}", headers)
        return web.json_response({"kind": "OverseerJob", "metadata": {"name": "nightly"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", patch)
    return app


def status(code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"kind": "Status", "status": "Failure", "message": message, "code": code}
    return web.json_response(body, status=code, headers=headers)


def write_kubeconfig(path: Path, server: str, user: dict[str, str]) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


@dataclass
class Setup:
    server: Server
    url: str
    port: int
    tmp_path: Path

    def connect(self, user: dict[str, str] | None = None, request: float = 5.0) -> kube.Kube:
        config = write_kubeconfig(self.tmp_path / "kubeconfig", self.url, user or {"token": "t"})
        return kube.Kube.connect(str(config), timeouts=kube.Timeouts(request=request))

    async def refusal(self, request: float = 5.0) -> errors.KubeError:
        """The error one apply of :data:`BODY` is refused with (a client of its own)."""
        client = self.connect(request=request)
        try:
            with pytest.raises(errors.KubeError) as raised:
                await client.apply_encoded("OverseerJob", "ns", "nightly", BODY)
        finally:
            await client.close()
        return raised.value


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    server = Server()
    runner = web.AppRunner(app_for(server), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Setup(server, f"http://127.0.0.1:{port}", port, tmp_path)
    finally:
        await runner.cleanup()


async def test_an_apply_is_a_patch_with_the_apply_type_field_manager_and_credentials(
    setup: Setup,
) -> None:
    client = setup.connect()
    try:
        # When a body already encoded is applied
        await client.apply_encoded("OverseerJob", "ns", "nightly", BODY)
    finally:
        await client.close()
    # Then the API server got it as a server-side apply, forced, under Overseer's manager
    [request] = setup.server.requests
    assert request["method"] == "PATCH" and request["path"] == PATH
    assert request["query"] == {"fieldManager": "overseer", "force": "true"}
    assert request["type"] == "application/apply-patch+yaml"
    assert request["authorization"] == "Bearer t"
    assert request["body"] == BODY
    assert client.writes["apply OverseerJob"] == 1


@pytest.mark.parametrize(
    ("code", "retry_after", "seconds"), [(429, "3", 3.0), (503, "", None), (500, "", None)]
)
async def test_a_refusal_is_a_kube_error_with_its_status_and_retry_after(
    setup: Setup, code: int, retry_after: str, seconds: float | None
) -> None:
    setup.server.answers = [(code, retry_after)]
    refused = await setup.refusal()
    assert refused.status == code
    assert refused.retry_after == seconds
    assert f"refused with {code} (HTTP {code})" in refused.message
    assert "applying OverseerJob ns/nightly" in refused.message


async def test_an_invalid_object_is_a_kube_invalid_object_error(setup: Setup) -> None:
    setup.server.answers = [(422, "")]
    refused = await setup.refusal()
    assert isinstance(refused, errors.KubeInvalidObjectError)
    assert refused.status == 422


async def test_the_sync_sends_a_write_refused_with_429_again_after_its_retry_after(
    setup: Setup,
) -> None:
    # Given an API server that refuses the first apply with 429 and Retry-After: 1
    setup.server.answers = [(429, "1")]
    client = setup.connect()
    write = sync.Write("nightly", {"kind": "OverseerJob", "metadata": {"name": "nightly"}})
    quick = write_pacing.RetryPolicy(first=0.01, ceiling=5.0, jitter=0.0)
    try:
        # When the sync carries out its one write
        await repository_writes.carry_out(
            sync.Plan(update=(write,)), "ns", client, frozenset(), retry=quick
        )
    finally:
        await client.close()
    # Then it was sent again, no sooner than the server asked
    first, second = setup.server.requests
    assert second["time"] - first["time"] >= 0.9
    assert json.loads(second["body"])["metadata"] == {"name": "nightly", "namespace": "ns"}


async def test_a_rotated_token_file_is_read_again_after_a_401(setup: Setup) -> None:
    # Given a kubeconfig whose token is a file (a ServiceAccount's, rotated by the kubelet)
    token = setup.tmp_path / "token"
    token.write_text("first\n")
    setup.server.tokens = {"first"}
    client = setup.connect({"tokenFile": str(token)})
    try:
        await client.apply_encoded("OverseerJob", "ns", "nightly", BODY)
        # When the token is rotated and the old one no longer accepted
        token.write_text("second\n")
        setup.server.tokens = {"second"}
        await client.apply_encoded("OverseerJob", "ns", "nightly", BODY)
        await client.apply_encoded("OverseerJob", "ns", "nightly", BODY)
    finally:
        await client.close()
    # Then the refused apply was sent again with the new token, which is kept
    sent = [request["authorization"] for request in setup.server.requests]
    assert sent == ["Bearer first", "Bearer first", "Bearer second", "Bearer second"]


async def test_a_token_refused_for_good_is_a_401_kube_error(setup: Setup) -> None:
    setup.server.tokens = set()
    refused = await setup.refusal()
    assert refused.status == 401
    assert len(setup.server.requests) == 1  # a static token: nothing else to try


async def test_an_unanswered_apply_is_given_up_after_the_request_timeout(setup: Setup) -> None:
    setup.server.silent = True
    started = time.monotonic()
    refused = await setup.refusal(request=0.5)
    assert refused.status is None  # no answer: the sync's writes retry it
    assert time.monotonic() - started < 3.0


async def test_the_connections_carry_tcp_keepalive_and_close_with_the_client(
    setup: Setup,
) -> None:
    client = setup.connect()
    command = ["ss", "-tnoH", "state", "established", f"( dport = :{setup.port} )"]
    try:
        await asyncio.gather(
            *(client.apply_encoded("OverseerJob", "ns", "nightly", BODY) for _ in range(4))
        )
        # While the client is open, its connections are kept, and the kernel probes them
        sockets = (await asyncio.to_thread(subprocess.run, command, capture_output=True)).stdout
        assert sockets.strip(), "no connection kept open"
        assert all(b"keepalive" in line for line in sockets.splitlines()), sockets
    finally:
        await client.close()
    # And once it is closed, none is left
    await asyncio.sleep(0.1)
    sockets = (await asyncio.to_thread(subprocess.run, command, capture_output=True)).stdout
    assert not sockets.strip(), sockets
