"""POST /sync and GET /metrics through the ASGI app.
The client is the one fake (``tests.support.fake_kube``, planned as ``api.WatchFeed``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from overseer import archive_local
from overseer_api import app as app_
from overseer_api import settings
from tests.support import api

READER, ADMIN = "reader-token-1", "admin-token-3"


def repository(name: str) -> dict[str, object]:
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerRepository",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"url": "file:///x"},
    }


@pytest.fixture
def feed() -> api.WatchFeed:
    feed = api.WatchFeed()
    for name in ("beta", "alpha"):
        feed.add("OverseerRepository", repository(name))
    feed.add("OverseerJob", api.job_body({"name": "A job", "command": "true"}))
    return feed


@pytest.fixture
async def client(feed: api.WatchFeed, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    tokens = api.write_tokens(
        tmp_path / "t.json", {"r": (READER, ["read"]), "a": (ADMIN, ["admin"])}
    )
    app = app_.create_app(
        settings.Settings(tokens_file=tokens), feed, archive_local.LocalArchive(tmp_path)
    )
    async with api.client_of(app, ADMIN) as client:
        yield client


async def test_sync_requests_every_repository_or_one_saying_who(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    response = await client.post("/sync")
    assert response.status_code == 202
    assert response.json()["repositories"] == ["alpha", "beta"]
    patched = [(kind, name) for kind, name, _ in feed.patches]
    assert patched == [("OverseerRepository", "alpha"), ("OverseerRepository", "beta")]
    annotations = feed.patches[0][2]["metadata"]["annotations"]
    assert annotations["overseer.dev/requested-sync-by"] == "token:a"
    assert float(annotations["overseer.dev/requested-sync"]) > 0
    events = [b for b in feed.created if b["kind"] == "Event"]
    assert [e["reason"] for e in events] == ["SyncRequested", "SyncRequested"]
    one = await client.post("/sync", params={"repository": "beta"})
    assert one.json()["repositories"] == ["beta"]
    missing = await client.post("/sync", params={"repository": "nope"})
    assert missing.status_code == 404
    reader = await client.post("/sync", headers={"Authorization": f"Bearer {READER}"})
    assert reader.status_code == 403


async def test_sync_with_an_idempotency_key_requests_once_and_replays_its_answer(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    key = {"Idempotency-Key": "nightly-sync-1"}
    first = await client.post("/sync", params={"repository": "beta"}, headers=key)
    again = await client.post("/sync", params={"repository": "beta"}, headers=key)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == first.json()
    assert [name for _, name, _ in feed.patches] == ["beta"]  # requested once
    # The same key for another request is refused; a failed request frees its key
    other = await client.post("/sync", params={"repository": "alpha"}, headers=key)
    assert other.status_code == 422, other.text
    assert other.json()["type"].endswith("/idempotency-key-reused")
    retried = {"Idempotency-Key": "k2"}
    assert (
        await client.post("/sync", params={"repository": "nope"}, headers=retried)
    ).status_code == 404
    feed.add("OverseerRepository", repository("nope"))
    assert (
        await client.post("/sync", params={"repository": "nope"}, headers=retried)
    ).status_code == 202


async def test_metrics_count_requests_by_route_template_and_show_the_caches(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/jobs/A%20job")
    await client.get("/jobs/Nope")
    await client.get("/no/such/route")
    await client.post("/jobs/A%20job")
    text = (await client.get("/metrics", headers={"Authorization": ""})).text
    assert 'overseer_api_requests_total{method="GET",route="/jobs/{name}",status="200"} 1.0' in text
    assert 'overseer_api_requests_total{method="GET",route="/jobs/{name}",status="404"} 1.0' in text
    assert 'overseer_api_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert (
        'overseer_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/jobs/{name}"}'
        in text
    )
    assert 'overseer_api_cache_objects{kind="OverseerJob",namespace="default"} 1.0' in text
    assert 'overseer_api_executions{namespace="default",phase="Unknown"} 1.0' in text
    assert "overseer_api_ready 1.0" in text
    assert "Nope" not in text
