"""GET /jobs/{name} answers JSON encoded once per change (``views.job_detail_json``),
with an ETag: every change to the job or to one of its executions, by watch event or
by the API's own write, must show at the next read, and a 304 only while nothing
changed. The caches are fed by the one fake client (``api.WatchFeed``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from overseer import archive_local
from overseer.core import schedule
from overseer_api import app as app_
from overseer_api import settings
from tests.support import api

READER, ADMIN = "reader-token-1", "admin-token-2"
JOB, EXECUTION = "OverseerJob", "OverseerExecution"


@pytest.fixture
def feed() -> api.WatchFeed:
    return api.WatchFeed()


@pytest.fixture
async def client(feed: api.WatchFeed, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    tokens = api.write_tokens(
        tmp_path / "tokens.json", {"r": (READER, ["read"]), "a": (ADMIN, ["admin"])}
    )
    config = settings.Settings(tokens_file=tokens)
    app = app_.create_app(config, feed, archive_local.LocalArchive(tmp_path / "archive"))
    async with api.client_of(app, READER) as client:
        yield client


def run(job: dict[str, Any], hour: int, phase: str | None, version: int) -> dict[str, Any]:
    """An execution of ``job`` (the scheduler's builder) at ``hour``, in ``phase``."""
    body = schedule.build_scheduled_execution(job, datetime(2026, 12, 6, hour, tzinfo=UTC))
    body["metadata"]["resourceVersion"] = str(version)
    body["status"] = {"phase": phase} if phase else {}
    return body


def phases(answer: httpx.Response) -> list[str | None]:
    return [e["phase"] for e in answer.json()["executions"]]


async def test_every_change_shows_at_the_next_read(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    job = api.job_body({"name": "Nightly", "command": "true"}, version=10)
    await feed.push(JOB, "ADDED", job)
    first = await client.get("/jobs/Nightly")
    assert first.status_code == 200 and phases(first) == []
    assert first.json() == (await client.get("/jobs/Nightly")).json()  # kept, same answer

    await feed.push(EXECUTION, "ADDED", run(job, 1, None, 11))
    assert phases(await client.get("/jobs/Nightly")) == [None]
    await feed.push(EXECUTION, "MODIFIED", run(job, 1, "Running", 12))
    assert phases(await client.get("/jobs/Nightly")) == ["Running"]
    await feed.push(EXECUTION, "ADDED", run(job, 2, "Pending", 13))
    assert phases(await client.get("/jobs/Nightly")) == ["Pending", "Running"]
    await feed.push(EXECUTION, "DELETED", run(job, 1, "Running", 14))
    assert phases(await client.get("/jobs/Nightly")) == ["Pending"]

    described = api.job_body(
        {"name": "Nightly", "command": "true", "description": "new"}, version=15
    )
    await feed.push(JOB, "MODIFIED", described)
    assert (await client.get("/jobs/Nightly")).json()["description"] == "new"
    await feed.push(JOB, "DELETED", described)
    gone = await client.get("/jobs/Nightly")
    assert gone.status_code == 404


async def test_the_apis_own_write_shows_at_once(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    job = api.job_body({"name": "Toggle", "command": "true"}, version=10)
    feed.stored[(JOB, "default", job["metadata"]["name"])] = job
    await feed.push(JOB, "ADDED", job)
    assert (await client.get("/jobs/Toggle")).json()["active"] is True
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert (await client.delete("/jobs/Toggle", headers=admin)).json()["active"] is False
    # no watch event yet: the cache holds the write's response, and the detail follows it
    assert (await client.get("/jobs/Toggle")).json()["active"] is False


async def test_an_etag_answers_304_until_something_changes(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    job = api.job_body({"name": "Tagged", "command": "true"}, version=10)
    await feed.push(JOB, "ADDED", job)
    first = await client.get("/jobs/Tagged")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    held = await client.get("/jobs/Tagged", headers={"If-None-Match": etag})
    assert held.status_code == 304
    assert held.content == b""
    assert held.headers["ETag"] == etag
    weak_list = await client.get("/jobs/Tagged", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak_list.status_code == 304
    other = await client.get("/jobs/Tagged", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200

    await feed.push(EXECUTION, "ADDED", run(job, 3, "Running", 11))
    changed = await client.get("/jobs/Tagged", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert phases(changed) == ["Running"]


async def test_urls_follow_the_host_each_client_used(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    await feed.push(JOB, "ADDED", api.job_body({"name": "Hosted", "command": "true"}))
    one = await client.get("/jobs/Hosted", headers={"Host": "one.example"})
    two = await client.get("/jobs/Hosted", headers={"Host": "two.example"})
    assert one.json()["url"] == "http://one.example/jobs/Hosted"
    assert two.json()["url"] == "http://two.example/jobs/Hosted"
    assert one.headers["ETag"] != two.headers["ETag"]


async def test_the_detail_is_the_schema_the_openapi_document_names(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    await feed.push(JOB, "ADDED", api.job_body({"name": "Typed", "command": "true"}))
    answer = await client.get("/jobs/Typed")
    assert answer.headers["content-type"] == "application/json"
    document = (await client.get("/openapi.json")).json()
    get = document["paths"]["/jobs/{name}"]["get"]
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/JobDetail"}
    assert get["security"] == [{"HTTPBearer": []}]
    required = document["components"]["schemas"]["JobDetail"]["required"]
    assert set(required) <= set(answer.json())
