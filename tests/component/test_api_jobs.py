"""The API's job routes through the ASGI app: caches fed by the one fake client
(``tests.support.fake_kube``, planned as ``api.WatchFeed``), real token auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from overseer import archive_local
from overseer_api import app as app_
from overseer_api import settings
from tests.support import api

READER, EXECUTOR = "reader-token-1234", "executor-token-5678"


@pytest.fixture
def feed() -> api.WatchFeed:
    return api.WatchFeed()


@pytest.fixture
async def client(feed: api.WatchFeed, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    tokens = api.write_tokens(
        tmp_path / "tokens.json", {"ci": (READER, ["read"]), "ops": (EXECUTOR, ["execute"])}
    )
    config = settings.Settings(namespaces=("other",), tokens_file=tokens)
    app = app_.create_app(config, feed, archive_local.LocalArchive(tmp_path / "archive"))
    async with api.client_of(app, READER) as client:
        yield client


def named(*names: str, namespace: str = "default") -> list[dict[str, object]]:
    return [api.job_body({"name": n, "command": "true"}, namespace=namespace) for n in names]


async def test_health_needs_no_token_and_ready_after_the_first_lists(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz", headers={"Authorization": ""})
    assert response.json() == {"status": "ok"}
    response = await client.get("/readyz", headers={"Authorization": ""})
    assert response.status_code == 200


async def test_not_ready_until_every_cache_has_listed(tmp_path: Path) -> None:
    feed = api.WatchFeed()
    feed.unreachable = True
    config = settings.Settings(
        tokens_file=api.write_tokens(tmp_path / "t", {"a": (READER, ["read"])})
    )
    app = app_.create_app(config, feed, archive_local.LocalArchive(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
            jobs = await client.get("/jobs", headers={"Authorization": f"Bearer {READER}"})
    assert ready.status_code == 503
    assert ready.headers["Retry-After"] == "5"
    assert ready.headers["content-type"] == "application/problem+json"
    assert jobs.status_code == 503
    assert jobs.json()["type"] == "https://overseer.dev/problems/not-ready"


async def test_a_job_by_its_display_name_with_space_unicode_and_slash(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    for body in named("A job", "Sauvegarde é", "a/b"):
        await feed.push("OverseerJob", "ADDED", body)
    for name, path in [
        ("A job", "A%20job"),
        ("Sauvegarde é", "Sauvegarde%20%C3%A9"),
        ("a/b", "a%2Fb"),
    ]:
        response = await client.get(f"/jobs/{path}")
        assert response.status_code == 200, response.text
        job = response.json()
        assert job["name"] == name
        assert job["url"] == f"http://api.test/jobs/{path}"
        assert job["source"] == {"repository": "repo", "file": "jobs/a.yml", "commit": "c0ffee"}
        assert job["definition"]["command"] == "true"


async def test_unknown_job_and_path_tricks_are_404_problems(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    await feed.push("OverseerJob", "ADDED", named("A job")[0])
    for path in ["/jobs/B%20job", "/jobs/%2F..%2FA%20job", "/jobs/" + "x" * 10_000, "/jobs/a%00"]:
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "https://overseer.dev/problems/job-not-found"
        assert "GET /jobs" in response.json()["detail"]


async def test_secret_defaults_are_never_shown(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    body = api.job_body(
        {
            "name": "deploy",
            "cmdspec": "deploy target --password password",
            "parameters": {
                "target": {"default": "prod"},
                "password": {"default": "hunter2-secret", "secret": True},
            },
        }
    )
    await feed.push("OverseerJob", "ADDED", body)
    response = await client.get("/jobs/deploy")
    assert "hunter2-secret" not in response.text
    parameters = response.json()["parameters"]
    assert parameters["password"]["secret"] is True
    assert parameters["password"]["hasDefault"] is True
    assert parameters["password"]["default"] is None
    assert parameters["target"]["default"] == "prod"


async def test_list_pages_are_stable_while_jobs_change(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    for body in named(*(f"job {i:02d}" for i in range(10))):
        await feed.push("OverseerJob", "ADDED", body)
    first = (await client.get("/jobs", params={"limit": 4})).json()
    assert [j["name"] for j in first["items"]] == ["job 00", "job 01", "job 02", "job 03"]
    # A job before the cursor goes away, one is added after it: the next page neither
    # repeats nor skips.
    await feed.push("OverseerJob", "DELETED", named("job 01")[0])
    await feed.push("OverseerJob", "ADDED", named("job 04a")[0])
    second = (await client.get("/jobs", params={"limit": 4, "continue": first["continue"]})).json()
    assert [j["name"] for j in second["items"]] == ["job 04", "job 04a", "job 05", "job 06"]
    last = (await client.get("/jobs", params={"limit": 4, "continue": second["continue"]})).json()
    assert [j["name"] for j in last["items"]] == ["job 07", "job 08", "job 09"]
    assert last["continue"] is None


async def test_list_filters(client: httpx.AsyncClient, feed: api.WatchFeed) -> None:
    await feed.push("OverseerJob", "ADDED", api.job_body({"name": "Backup"}, active=False))
    await feed.push("OverseerJob", "ADDED", api.job_body({"name": "Deploy"}))

    def names(response: httpx.Response) -> list[str]:
        return [j["name"] for j in response.json()["items"]]

    assert names(await client.get("/jobs", params={"active": "false"})) == ["Backup"]
    assert names(await client.get("/jobs", params={"q": "epl"})) == ["Deploy"]
    assert names(await client.get("/jobs", params={"repository": "nope"})) == []


async def test_bad_cursor_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs", params={"continue": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json()["type"] == "https://overseer.dev/problems/invalid-request"


async def test_other_namespaces_under_their_prefix_and_unserved_404(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    await feed.push("OverseerJob", "ADDED", named("There", namespace="other")[0])
    listed = (await client.get("/namespaces/other/jobs")).json()
    assert [j["url"] for j in listed["items"]] == ["http://api.test/namespaces/other/jobs/There"]
    assert (await client.get("/jobs/There")).status_code == 404
    response = await client.get("/namespaces/kube-system/jobs")
    assert response.status_code == 404
    assert response.json()["type"] == "https://overseer.dev/problems/namespace-not-served"


async def test_auth_401_without_or_with_a_wrong_token(client: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        response = await client.get("/jobs", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="overseer"'
        assert "wrong" not in response.text


async def test_a_changed_definition_is_shown_at_once(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    # What a job's detail derives from its definition is kept per resourceVersion:
    # a new version must never be answered from the old one.
    def job(default: str, version: int) -> dict[str, object]:
        definition = {"name": "P", "cmdspec": "run x", "parameters": {"x": {"default": default}}}
        return api.job_body(definition, version=version)

    await feed.push("OverseerJob", "ADDED", job("one", 10))
    assert (await client.get("/jobs/P")).json()["parameters"]["x"]["default"] == "one"
    await feed.push("OverseerJob", "MODIFIED", job("two", 11))
    assert (await client.get("/jobs/P")).json()["parameters"]["x"]["default"] == "two"
