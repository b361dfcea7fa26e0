"""pods/exec against a real WebSocket server on 127.0.0.1 speaking the channel protocol."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from overseer import errors, kube, kube_exec

pytestmark = pytest.mark.timeout(60)

FLOOD = 64 * 1024 * 1024
CHUNK = 32 * 1024


async def _exec(request: web.Request) -> web.WebSocketResponse:
    """Like the API server: stdout on channel 1, then a Status on channel 3."""
    ws = web.WebSocketResponse(protocols=kube_exec.EXEC_PROTOCOLS)
    await ws.prepare(request)
    mode = request.query.get("command", "")
    if mode == "flood":
        block = b"\x01" + b"y" * CHUNK
        for _ in range(FLOOD // CHUNK):
            await ws.send_bytes(block)
    elif mode == "big-message":
        await ws.send_bytes(b"\x01" + b"z" * (8 * 1024 * 1024))
    else:
        await ws.send_bytes(b"\x01" + b"signalled\n")
    await ws.send_bytes(b"\x03" + json.dumps({"status": "Success"}).encode())
    await ws.close()
    return ws


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[kube.Kube]:
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/exec", _exec)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    client = kube.Kube.connect(str(config))
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()


async def test_a_short_answer_is_read_whole(client: kube.Kube) -> None:
    result = await client.exec_in_pod("ns", "pod", "job", ["quiet"])
    assert result == kube.ExecResult(0, b"signalled\n", b"", "")
    assert not result.truncated


async def test_a_flood_on_stdout_is_cut_at_the_bound_and_costs_no_memory(
    client: kube.Kube,
) -> None:
    """Issue 11, item 8: 64 MiB on stdout keep at most EXEC_OUTPUT_LIMIT bytes."""
    tracemalloc.start()
    try:
        result = await client.exec_in_pod("ns", "pod", "job", ["flood"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"
    assert result.exit_code == 0
    assert len(result.stdout) == kube_exec.EXEC_OUTPUT_LIMIT
    assert result.truncated


async def test_one_huge_message_fails_the_exec_instead_of_being_held(client: kube.Kube) -> None:
    with pytest.raises(errors.KubeError, match=r"too big|message"):
        await client.exec_in_pod("ns", "pod", "job", ["big-message"])
