"""GET /repositories and /repositories/{name} through the ASGI app, from the watch cache.

Statuses come from the operator's own builder (``core.repository_sync.build_status``),
so the API is tested on what the sync stores. The client is the one fake
(``tests.support.fake_kube``, planned as ``api.WatchFeed``): any call the routes make
beyond the watch (a Secret read, say) raises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from overseer import archive_local
from overseer.core import repository_sync
from overseer.crd import repository as repository_
from overseer_api import app as app_
from overseer_api import settings
from tests.support import api

READER, NOBODY = "reader-token-1", "scopeless-token-2"
KIND = repository_.KIND.kind
COMMIT = "0123456789abcdef0123456789abcdef01234567"
WHEN = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def repository(
    name: str,
    *,
    namespace: str = "default",
    spec: dict[str, Any] | None = None,
    errors: list[repository_.DefinitionError] | None = None,
    fetch_error: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """An OverseerRepository with the status a sync writes."""
    status, _ = repository_sync.build_status(
        previous={},
        generation=2,
        commit=None if fetch_error else COMMIT,
        job_count=None if fetch_error else 3,
        errors=errors or [],
        fetch_error=fetch_error,
        now=WHEN,
        handled_request="1796673600.500000",
    )
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 2,
            "resourceVersion": "5",
            "annotations": {
                "overseer.dev/requested-sync": "1796673600.500000",
                "overseer.dev/requested-sync-by": "token:ops",
            },
        },
        "spec": spec or {"url": "https://git.example/org/jobs.git", "ref": "main"},
        "status": status,
    }


@pytest.fixture
def feed() -> api.WatchFeed:
    return api.WatchFeed()


@pytest.fixture
async def client(feed: api.WatchFeed, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    tokens = api.write_tokens(tmp_path / "t.json", {"r": (READER, ["read"]), "n": (NOBODY, [])})
    config = settings.Settings(namespaces=("other",), tokens_file=tokens)
    app = app_.create_app(config, feed, archive_local.LocalArchive(tmp_path / "archive"))
    async with api.client_of(app, READER) as client:
        yield client


async def test_a_synced_repository_shows_its_spec_commit_and_ready(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    spec = {"url": "https://git.example/org/jobs.git", "ref": "main", "path": "ops"}
    await feed.push(KIND, "ADDED", repository("jobs", spec=spec | {"interval": "30s"}))
    response = await client.get("/repositories/jobs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "jobs"
    assert (body["url"], body["ref"], body["path"], body["interval"]) == (
        "https://git.example/org/jobs.git",
        "main",
        "ops",
        "30s",
    )
    assert (body["commit"], body["shortCommit"]) == (COMMIT, COMMIT[:12])
    assert body["lastSyncTime"] == "2026-12-06T20:00:00Z"
    assert (body["ready"], body["reason"]) == (True, "Synced")
    assert COMMIT in body["message"]
    assert {c["type"]: c["status"] for c in body["conditions"]} == {
        "Ready": "True",
        "Synced": "True",
    }
    assert (body["jobCount"], body["errors"], body["observedGeneration"]) == (3, [], 2)
    assert body["syncRequestedBy"] == "token:ops"
    assert body["syncRequestedAt"].startswith("2026-12-07T")
    assert body["syncHandledAt"] == body["syncRequestedAt"]  # the request's sync is done
    assert body["jobsUrl"] == "http://api.test/jobs?repository=jobs"


async def test_a_failed_fetch_and_file_errors_are_shown(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    missing = ("RepositoryNotFound", "no repository at https://git.example/gone.git")
    await feed.push(KIND, "ADDED", repository("gone", fetch_error=missing))
    bad = repository_.DefinitionError(file="jobs/a.yml", line=3, message="no name", job=None)
    await feed.push(KIND, "ADDED", repository("bad", errors=[bad]))
    gone = (await client.get("/repositories/gone")).json()
    assert (gone["ready"], gone["reason"], gone["commit"]) == (False, "RepositoryNotFound", None)
    assert "no repository at https://git.example/gone.git" in gone["message"]
    synced = {c["type"]: c for c in gone["conditions"]}["Synced"]
    assert (synced["status"], synced["reason"]) == ("False", "RepositoryNotFound")
    errors = (await client.get("/repositories/bad")).json()
    assert (errors["ready"], errors["reason"]) == (False, "InvalidDefinitions")
    assert errors["errors"] == [
        {"file": "jobs/a.yml", "job": None, "field": None, "line": 3, "message": "no name",
         "reason": None}
    ]  # fmt: skip


async def test_credentials_are_never_in_the_body(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    spec = {
        "url": "https://ghp_s3cretToken@git.example/org/private.git",
        "secretRef": {"name": "git-token"},
        "hookSecretRef": {"name": "hook-token"},
    }
    await feed.push(KIND, "ADDED", repository("private", spec=spec))
    for path in ("/repositories/private", "/repositories"):
        response = await client.get(path)
        assert response.status_code == 200
        assert "s3cret" not in response.text
    body = (await client.get("/repositories/private")).json()
    assert body["url"] == "https://***@git.example/org/private.git"
    assert (body["secretName"], body["hookSecretName"]) == ("git-token", "hook-token")


async def test_the_list_is_sorted_and_follows_the_watch(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    for name in ("beta", "alpha"):
        await feed.push(KIND, "ADDED", repository(name))
    listed = (await client.get("/repositories")).json()
    assert [r["name"] for r in listed["items"]] == ["alpha", "beta"]
    await feed.push(KIND, "DELETED", repository("alpha"))
    listed = (await client.get("/repositories")).json()
    assert [r["name"] for r in listed["items"]] == ["beta"]
    assert (await client.get("/repositories/alpha")).status_code == 404


async def test_unknown_repository_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/repositories/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://overseer.dev/problems/repository-unknown"
    assert "nope" in problem["detail"]


async def test_namespaced_form_and_unserved_namespace(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    await feed.push(KIND, "ADDED", repository("there", namespace="other"))
    listed = (await client.get("/namespaces/other/repositories")).json()
    assert [r["name"] for r in listed["items"]] == ["there"]
    assert listed["items"][0]["jobsUrl"] == (
        "http://api.test/namespaces/other/jobs?repository=there"
    )
    assert (await client.get("/namespaces/other/repositories/there")).status_code == 200
    assert (await client.get("/repositories/there")).status_code == 404
    response = await client.get("/namespaces/kube-system/repositories")
    assert response.json()["type"] == "https://overseer.dev/problems/namespace-not-served"


async def test_read_scope_is_needed(client: httpx.AsyncClient, feed: api.WatchFeed) -> None:
    await feed.push(KIND, "ADDED", repository("jobs"))
    for path in ("/repositories", "/repositories/jobs"):
        denied = await client.get(path, headers={"Authorization": f"Bearer {NOBODY}"})
        assert denied.status_code == 403, denied.text
        anonymous = await client.get(path, headers={"Authorization": ""})
        assert anonymous.status_code == 401
        assert (await client.get(path)).status_code == 200
