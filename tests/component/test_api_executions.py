"""Executing, repeating, signalling and (de)activating through the ASGI app.

The writes reach a typed stand-in of ``Kube`` that answers as the API server does; what
they write (the execution object, the patches) is checked exactly. The same routes on
the real cluster: ``tests/e2e/test_api_*.py``.

The client is the one fake (``tests.support.fake_kube``, planned as ``api.WatchFeed``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from overseer import archive_local
from overseer.core import execution_resource
from overseer.crd import execution as execution_
from overseer_api import actions, settings
from overseer_api import app as app_
from tests.support import api

READER, EXECUTOR, ADMIN = "reader-token-1", "executor-token-2", "admin-token-3"
EXECUTION = "OverseerExecution"
DEPLOY = {
    "name": "A job",
    "cmdspec": "my_command positional_var --some-opt some_opt",
    "parameters": {
        "positional_var": {"required": True},
        "some_opt": {"default": "x"},
        "password": {"secret": True, "default": "s3cret-default"},
    },
}


@pytest.fixture
def feed() -> api.WatchFeed:
    feed = api.WatchFeed()
    feed.add("OverseerJob", api.job_body(DEPLOY))
    feed.add("OverseerJob", api.job_body({"name": "Off", "command": "true"}, active=False))
    feed.add(
        "OverseerJob",
        api.job_body(
            {"name": "Single", "command": "sleep 60", "concurrency": {"policy": "forbid"}}
        ),
    )
    return feed


@pytest.fixture
async def client(feed: api.WatchFeed, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    tokens = api.write_tokens(
        tmp_path / "tokens.json",
        {"r": (READER, ["read"]), "x": (EXECUTOR, ["execute"]), "a": (ADMIN, ["admin"])},
    )
    config = settings.Settings(tokens_file=tokens)
    app = app_.create_app(config, feed, archive_local.LocalArchive(tmp_path / "archive"))
    async with api.client_of(app, EXECUTOR) as client:
        yield client


HOSTILE = {"positional_var": "$(rm -rf /); echo 'x' \"y\"\nz", "some_opt": "-rf"}


async def test_execute_creates_the_execution_with_the_parameters_exactly(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    response = await client.post("/jobs/A%20job", json=HOSTILE)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["url"] == response.headers["Location"]
    assert created["url"] == f"http://api.test/jobs/A%20job/{created['id']}"
    assert created["job"] == "A job"
    [body] = feed.created[:1]
    assert body["kind"] == EXECUTION
    assert body["spec"]["parameters"] == HOSTILE
    assert body["spec"]["trigger"] == {"type": "api"}
    assert body["spec"]["executionId"] == created["id"]
    assert body["metadata"]["annotations"][execution_resource.CREATED_BY_ANNOTATION] == "token:x"
    # The write is read back at once, before any watch event: the client sees it.
    got = await client.get(created["url"])
    assert got.status_code == 200
    detail = got.json()
    assert detail["trigger"] == {"type": "api", "by": "token:x", "repeatOf": None}
    assert detail["parameters"] == HOSTILE
    # And an Event says who did it.
    [event] = [b for b in feed.created if b["kind"] == "Event"]
    assert event["involvedObject"]["name"] == body["metadata"]["name"]
    assert "(by token:x)" in event["message"]


async def test_bad_parameters_are_422_naming_each_and_nothing_is_created(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    response = await client.post("/jobs/A%20job", json={"nope": "1", "other": "2"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "https://overseer.dev/problems/invalid-parameters"
    fields = {e["field"] for e in problem["errors"]}
    assert {"nope", "other", "positional_var"} <= fields
    leading = await client.post("/jobs/A%20job", json={"positional_var": "-rf"})
    assert leading.status_code == 422
    assert [e["field"] for e in leading.json()["errors"]] == ["positional_var"]
    assert feed.created == []


async def test_malformed_json_is_400_and_a_list_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs/A%20job", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "https://overseer.dev/problems/malformed-json"
    assert (await client.post("/jobs/A%20job", json=["a"])).status_code == 422


async def test_inactive_409_and_forbid_with_one_running_409(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    response = await client.post("/jobs/Off")
    assert response.status_code == 409
    assert response.json()["type"] == "https://overseer.dev/problems/job-inactive"
    first = await client.post("/jobs/Single")
    assert first.status_code == 201
    second = await client.post("/jobs/Single")
    assert second.status_code == 409
    assert second.json()["type"] == "https://overseer.dev/problems/concurrency-limit"
    assert len([b for b in feed.created if b["kind"] == EXECUTION]) == 1


async def test_a_read_token_may_not_execute(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs/A%20job", headers={"Authorization": f"Bearer {READER}"})
    assert response.status_code == 403
    assert "'execute'" in response.json()["detail"]


def test_ids_in_the_same_microsecond_differ() -> None:
    instant = datetime(2026, 1, 1, tzinfo=UTC)
    ids = actions.Ids(clock=lambda: instant)
    first = ids.next("ns", "job", {})
    second = ids.next("ns", "job", {})
    third = ids.next("ns", "job", {second: {}, "1767225600.000003": {}})
    assert (first, second, third) == (
        "1767225600.000000",
        "1767225600.000001",
        "1767225600.000002",
    )
    assert ids.next("ns", "other", {}) == "1767225600.000000"


async def test_secret_parameters_are_masked(client: httpx.AsyncClient, feed: api.WatchFeed) -> None:
    created = (
        await client.post("/jobs/A%20job", json={"positional_var": "a", "password": "hunter2"})
    ).json()
    detail = await client.get(created["url"])
    assert "hunter2" not in detail.text
    assert "s3cret-default" not in detail.text
    assert detail.json()["parameters"]["password"] == "***"
    output = detail.json()["output"]
    assert output["stdoutUrl"] == created["url"] + "/stdout"


async def test_a_secret_value_goes_into_a_secret_the_execution_owns_and_a_repeat_reuses_it(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    sent = {"positional_var": "a", "password": "hunter2-unique"}
    first = (await client.post("/jobs/A%20job", json=sent)).json()
    again = await client.post(first["url"])
    assert again.status_code == 201, again.text
    executions = [b for b in feed.created if b["kind"] == EXECUTION]
    secrets = [b for b in feed.created if b["kind"] == "Secret"]
    assert len(executions) == len(secrets) == 2
    for execution, secret in zip(executions, secrets, strict=True):
        # the spec holds the plain values and names the Secret, never the secret value
        assert "hunter2-unique" not in str(execution)
        assert execution["spec"]["parameters"] == {"positional_var": "a"}
        reference = execution["spec"]["secretParameters"]
        assert reference == {
            "secretName": f"{execution['metadata']['name']}-secret-parameters",
            "names": ["password"],
        }
        # the Secret holds it, owned by the execution (its uid)
        assert secret["metadata"]["name"] == reference["secretName"]
        assert base64.b64decode(secret["data"]["password"]) == b"hunter2-unique"
        [owner] = secret["metadata"]["ownerReferences"]
        assert owner["uid"] == execution["metadata"]["uid"]


async def test_repeat_runs_the_same_frozen_definition_or_the_latest(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    first = (await client.post("/jobs/A%20job", json={"positional_var": "a"})).json()
    old = feed.created[0]
    # git changes the job after the first execution
    changed = api.job_body({**DEPLOY, "description": "new"}, version=5000, commit="beef")
    await feed.push("OverseerJob", "MODIFIED", changed)
    again = await client.post(first["url"])
    assert again.status_code == 201
    repeat = [b for b in feed.created if b["kind"] == EXECUTION][-1]
    assert repeat["spec"]["definition"] == old["spec"]["definition"]
    assert repeat["spec"]["commit"] == old["spec"]["commit"]
    assert repeat["spec"]["parameters"] == {"positional_var": "a"}
    assert repeat["spec"]["trigger"] == {"type": "repeat", "repeatOf": first["id"]}
    latest = await client.post(first["url"], params={"revision": "latest"})
    assert latest.status_code == 201
    newest = [b for b in feed.created if b["kind"] == EXECUTION][-1]
    assert newest["spec"]["definition"]["description"] == "new"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("signal=HUP", "SIGHUP"),
        ("signal=SIGUSR1", "SIGUSR1"),
        ("signal=10", "SIGUSR1"),
        ("HUP", "SIGHUP"),
        ("", "SIGTERM"),
    ],
)
async def test_signals_are_appended_as_requests(
    client: httpx.AsyncClient, feed: api.WatchFeed, query: str, expected: str
) -> None:
    created = (await client.post("/jobs/A%20job", json={"positional_var": "a"})).json()
    response = await client.put(f"{created['url']}?{query}")
    assert response.status_code == 202, response.text
    assert response.json()["signal"] == expected
    assert response.json()["index"] == 0
    kind, _, patch = feed.patches[-1]
    value: dict[str, Any] = patch["json"][0]["value"]
    assert (kind, value["signal"], value["requestedBy"]) == (EXECUTION, expected, "token:x")
    signals = (await client.get(created["url"])).json()["signals"]
    assert [(s["signal"], s["result"]) for s in signals] == [(expected, None)]


async def test_unknown_signal_400_and_finished_execution_409(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    created = (await client.post("/jobs/A%20job", json={"positional_var": "a"})).json()
    unknown = await client.put(created["url"], params={"signal": "BOGUS"})
    assert unknown.status_code == 400
    assert "TERM, HUP" in unknown.json()["detail"]
    body = feed.created[0]
    ended = {**body, "status": {"phase": "Complete"}}
    ended["metadata"] = {**body["metadata"], "resourceVersion": "99999"}
    await feed.push(EXECUTION, "MODIFIED", ended)
    finished = await client.put(created["url"], params={"signal": "HUP"})
    assert finished.status_code == 409
    assert finished.json()["type"] == "https://overseer.dev/problems/execution-finished"


async def test_deactivate_and_reactivate_are_idempotent_patches_with_who(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert (await client.delete("/jobs/A%20job")).status_code == 403
    response = await client.delete("/jobs/A%20job", headers=admin)
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert response.json()["activeChanged"]["by"] == "token:a"
    again = await client.delete("/jobs/A%20job", headers=admin)
    assert again.json()["active"] is False
    patches = [p for p in feed.patches if p[0] == "OverseerJob"]
    assert len(patches) == 1
    assert patches[0][2]["spec"] == {"active": False}
    assert (await client.post("/jobs/A%20job", json={"positional_var": "a"})).status_code == 409
    assert (await client.put("/jobs/A%20job", headers=admin)).json()["active"] is True
    assert (await client.post("/jobs/A%20job", json={"positional_var": "a"})).status_code == 201


async def test_executions_list_newest_first_with_filters_and_pages(
    client: httpx.AsyncClient,
) -> None:
    ids = []
    for _ in range(5):
        ids.append((await client.post("/jobs/A%20job", json={"positional_var": "a"})).json()["id"])
    single = (await client.post("/jobs/Single")).json()["id"]
    page = (await client.get("/executions", params={"limit": 4})).json()
    assert [e["id"] for e in page["items"]] == [single, *ids[::-1][:3]]
    rest = await client.get("/executions", params={"limit": 4, "continue": page["continue"]})
    assert [e["id"] for e in rest.json()["items"]] == ids[1::-1]
    assert rest.json()["continue"] is None
    only = (await client.get("/executions", params={"job": "Single"})).json()
    assert [(e["id"], e["job"]) for e in only["items"]] == [(single, "Single")]
    none = (await client.get("/executions", params={"phase": "Running"})).json()
    assert none["items"] == []


async def test_unknown_execution_and_malformed_id_404(client: httpx.AsyncClient) -> None:
    for path in ("/jobs/A%20job/1489895624.840211", "/jobs/A%20job/abc", "/jobs/Nope/1.000000"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


async def test_an_idempotency_key_returns_the_first_execution_again(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    headers = {"Idempotency-Key": "deploy-42"}
    first = await client.post("/jobs/A%20job", json={"positional_var": "a"}, headers=headers)
    again = await client.post("/jobs/A%20job", json={"positional_var": "a"}, headers=headers)
    other = await client.post("/jobs/A%20job", json={"positional_var": "b"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert other.status_code == 422
    assert len([b for b in feed.created if b["kind"] == EXECUTION]) == 1


async def test_kubernetes_unreachable_is_503_with_retry_after(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    feed.refuse_create = "connection refused by 10.0.0.1:6443"
    response = await client.post("/jobs/A%20job", json={"positional_var": "a"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry" in response.json()["detail"]


async def test_an_unexpected_error_is_a_500_problem_without_a_trace(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(actions, "check_executable", broken)
    # Starlette answers, then raises again for the server to log: read the answer.
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    quiet = httpx.ASGITransport(app=transport.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=quiet, base_url="http://api.test", headers=client.headers
    ) as raw:
        response = await raw.post("/jobs/A%20job", json={"positional_var": "a"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://overseer.dev/problems/internal-error"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


async def test_the_originals_id_forms_name_the_same_execution(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    job = api.job_body(DEPLOY)
    execution = execution_resource.build_execution(
        job, "1489888092.000000", trigger=execution_.Trigger(type="api")
    )
    await feed.push(EXECUTION, "ADDED", execution)
    for form in ("1489888092.000000", "1489888092.0", "1489888092"):
        response = await client.get(f"/jobs/A%20job/{form}")
        assert response.status_code == 200, form
        assert response.json()["id"] == "1489888092.000000"


async def test_list_items_and_a_jobs_latest_executions_carry_the_exit_code(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    created = (await client.post("/jobs/A%20job", json={"positional_var": "a"})).json()
    body = feed.created[0]
    status = {"phase": "Failed", "exitCode": 3, "reason": "NonZeroExit", "message": "exit 3"}
    ended = {**body, "status": status}
    ended["metadata"] = {**body["metadata"], "resourceVersion": "99999"}
    await feed.push(EXECUTION, "MODIFIED", ended)
    items = (await client.get("/executions")).json()["items"]
    assert [(e["id"], e["exitCode"], e["reason"]) for e in items] == [
        (created["id"], 3, "NonZeroExit")
    ]
    assert items[0]["signal"] is None
    latest = (await client.get("/jobs/A%20job")).json()["executions"]
    assert [(e["id"], e["exitCode"], e["reason"]) for e in latest] == [
        (created["id"], 3, "NonZeroExit")
    ]
    detail = (await client.get(created["url"])).json()
    assert (detail["exitCode"], detail["reason"], detail["message"]) == (3, "NonZeroExit", "exit 3")
