"""Push hooks through the ASGI app: one sync per delivery id, however often the host
delivers it, and none for a push to a ref the repository does not sync. The claims and
the sync request are what the one fake client (``api.WatchFeed``) keeps, as the API
server would; the same on the real cluster: ``tests/e2e/test_api_hooks.py``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from overseer import archive_local
from overseer.core import push_hooks, sync
from overseer_api import app as app_
from overseer_api import settings
from tests.support import api

SECRET = "It's a Secret to Everybody"
REPOSITORY = "OverseerRepository"
UUID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


class Hosted(api.WatchFeed):
    """The fake client, with the repository's hook Secret."""

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        assert (namespace, name) == ("default", "hooks")
        return {"token": SECRET.encode()}


def repository(name: str, ref: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": "file:///jobs.git", "hookSecretRef": {"name": "hooks"}}
    if ref:
        spec["ref"] = ref
    metadata = {"name": name, "namespace": "default", "resourceVersion": "1"}
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": REPOSITORY,
        "metadata": metadata,
        "spec": spec,
    }


@pytest.fixture
def feed() -> Hosted:
    feed = Hosted()
    for name, ref in (("head", None), ("main", "main"), ("tagged", "v2")):
        feed.stored[(REPOSITORY, "default", name)] = repository(name, ref)
    return feed


@pytest.fixture
async def client(feed: Hosted, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = settings.Settings(tokens_file=api.write_tokens(tmp_path / "t", {}))
    app = app_.create_app(config, feed, archive_local.LocalArchive(tmp_path / "archive"))
    async with api.client_of(app, "no-token-needed") as client:
        yield client


def push(ref: str, default: str = "main", delivery: str | None = UUID) -> dict[str, Any]:
    body = json.dumps({"ref": ref, "repository": {"default_branch": default}}).encode()
    headers = {
        "X-Hub-Signature-256": f"sha256={push_hooks.sign(SECRET.encode(), body)}",
        "X-GitHub-Event": "push",
        "Content-Type": "application/json",
    }
    if delivery:
        headers["X-GitHub-Delivery"] = delivery
    return {"content": body, "headers": headers}


def sync_requests(feed: Hosted, name: str) -> int:
    return sum(
        1
        for kind, patched, patch in feed.patches
        if (kind, patched) == (REPOSITORY, name)
        and sync.REQUESTED_SYNC_ANNOTATION in patch["metadata"]["annotations"]
    )


async def test_a_delivery_requests_one_sync_however_often_it_arrives(
    client: httpx.AsyncClient, feed: Hosted
) -> None:
    first = await client.post("/hooks/git/main", **push("refs/heads/main"))
    assert first.status_code == 202, first.text
    assert first.json()["syncRequested"] is True
    assert first.json()["delivery"] == UUID
    again = await client.post("/hooks/git/main", **push("refs/heads/main"))
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["syncRequested"] is False
    assert sync_requests(feed, "main") == 1
    # The id is kept in the cluster (a claim), not in the process
    assert [k for (k, _, _) in feed.stored if k == "Lease"] == ["Lease"]
    # Another delivery of the same push (a new id) is a new request
    other = await client.post("/hooks/git/main", **push("refs/heads/main", delivery="other-id"))
    assert other.status_code == 202 and other.json()["syncRequested"] is True
    assert sync_requests(feed, "main") == 2


async def test_without_a_delivery_id_each_push_requests_a_sync(
    client: httpx.AsyncClient, feed: Hosted
) -> None:
    for _ in range(2):
        answer = await client.post("/hooks/git/main", **push("refs/heads/main", delivery=None))
        assert answer.status_code == 202 and answer.json()["syncRequested"] is True
    assert sync_requests(feed, "main") == 2


@pytest.mark.parametrize(
    "case",
    [
        ("main", "refs/heads/main", "main", True),
        ("main", "refs/heads/feature", "main", False),
        ("head", "refs/heads/trunk", "trunk", True),
        ("head", "refs/heads/feature", "trunk", False),
        ("tagged", "refs/tags/v2", "main", True),
        ("tagged", "refs/heads/main", "main", False),
    ],
)
async def test_a_push_to_a_ref_the_repository_does_not_sync_is_ignored(
    client: httpx.AsyncClient, feed: Hosted, case: tuple[str, str, str, bool]
) -> None:
    name, ref, default, synced = case
    answer = await client.post(f"/hooks/git/{name}", **push(ref, default))
    assert answer.status_code == 202, answer.text
    assert answer.json()["syncRequested"] is synced
    assert sync_requests(feed, name) == int(synced)
    if not synced:
        assert answer.json()["ignored"].startswith(f"{ref} is not the ref {name} syncs")
        assert not [k for (k, _, _) in feed.stored if k == "Lease"]  # nothing claimed


async def test_a_forged_delivery_is_refused_before_its_id_is_kept(
    client: httpx.AsyncClient, feed: Hosted
) -> None:
    forged = push("refs/heads/main")
    forged["headers"]["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    assert (await client.post("/hooks/git/main", **forged)).status_code == 401
    assert not [k for (k, _, _) in feed.stored if k == "Lease"]
    real = await client.post("/hooks/git/main", **push("refs/heads/main"))
    assert real.status_code == 202 and real.json()["syncRequested"] is True
