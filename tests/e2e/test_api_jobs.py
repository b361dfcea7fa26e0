"""The API's job routes on the real cluster: names as users write them, bad input, auth,
deactivation that git does not undo, and the original's example job.

The API runs as a process beside the operator; every step is an HTTP request.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_api_executions import wait_until
from tests.e2e.test_executions import ENDED, listed, stdout_of
from tests.e2e.test_original_example import MY_COMMAND, ORIGINAL_EXAMPLE
from tests.support.api_process import TOKENS, ApiProcess
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.overseer import eventually, jobs, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

OTHERS = """\
- name: A job without user
  cmdspec: my_command positional_var --some-opt some_opt
  env:
    SOME_ENV_VAR: SOME_VALUE
- name: Sauvegarde é
  command: "true"
- name: a/b
  command: "true"
"""
NAMES = {"A job", "A job without user", "Sauvegarde é", "a/b"}


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit(
        {"example_job.yml": ORIGINAL_EXAMPLE, "more.yml": OTHERS, "bin/my_command": MY_COMMAND},
        "the original's example and more",
    )
    return repo


@pytest.fixture
def synced(kube: Kube, api: ApiProcess, upstream: Upstream) -> dict[str, dict[str, Any]]:
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, NAMES)


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def test_jobs_by_name_bad_input_and_auth(
    kube: Kube, api: ApiProcess, synced: dict[str, dict[str, Any]]
) -> None:
    reader = api.client("reader")
    # Every job is listed, and each is read by its URL-encoded display name
    listed_names = [j["name"] for j in reader.get("/jobs").json()["items"]]
    assert listed_names == sorted(NAMES)
    for name in NAMES:
        response = reader.get("/jobs/" + quote(name))
        assert response.status_code == 200, (name, response.text)
        assert response.json()["name"] == name
        assert response.json()["source"]["repository"] == "jobs"
    assert reader.get("/jobs", params={"q": "SAUVE"}).json()["items"][0]["name"] == "Sauvegarde é"
    # Unknown jobs and executions are 404; path tricks are 4xx, never a 5xx
    assert reader.get("/jobs/Nope").status_code == 404
    assert reader.get("/jobs/a%2Fb/1489895624.840211").status_code == 404
    tricks = ["/jobs/..", "/jobs/%2F..%2Fa%2Fb", "/jobs/" + "x" * 10_000, "/jobs/a%00b"]
    for trick in tricks:
        with httpx.Client(base_url=api.url, headers=reader.headers) as raw:
            status = raw.get(httpx.URL(api.url + trick)).status_code
        assert 400 <= status < 500, (trick[:40], status)
    # Malformed JSON is 400; bad parameters 422; a read token may not POST (403)
    runner = api.client("runner")
    malformed = runner.post(
        "/jobs/" + quote("A job without user"),
        content=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.headers["content-type"] == "application/problem+json"
    assert runner.post("/jobs/Nope").status_code == 404
    forbidden = reader.post("/jobs/" + quote("A job without user"), json={})
    assert forbidden.status_code == 403
    assert "'execute'" in forbidden.json()["detail"]
    # Every route without a token is 401, with WWW-Authenticate
    anonymous = api.client(None)
    routes = [
        ("GET", "/jobs"),
        ("GET", "/jobs/a%2Fb"),
        ("POST", "/jobs/a%2Fb"),
        ("DELETE", "/jobs/a%2Fb"),
        ("PUT", "/jobs/a%2Fb"),
        ("GET", "/jobs/a%2Fb/1489895624.840211"),
        ("POST", "/jobs/a%2Fb/1489895624.840211"),
        ("PUT", "/jobs/a%2Fb/1489895624.840211"),
        ("GET", "/executions"),
        ("POST", "/sync"),
        ("GET", f"/namespaces/{kube.namespace}/jobs"),
    ]
    for method, route in routes:
        response = anonymous.request(method, route)
        assert response.status_code == 401, (method, route, response.status_code)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # No token was ever written to the log
    assert not any(token in api.log() for token, _ in TOKENS.values())


def test_deactivation_refuses_executions_and_survives_a_sync(
    kube: Kube, api: ApiProcess, synced: dict[str, dict[str, Any]], upstream: Upstream
) -> None:
    boss, runner = api.client("boss"), api.client("runner")
    url = "/jobs/" + quote("Sauvegarde é")
    # When the job is deactivated (twice: the same answer)
    first = boss.delete(url)
    assert first.status_code == 200, first.text
    assert boss.delete(url).json()["activeChanged"] == first.json()["activeChanged"]
    assert first.json()["active"] is False
    assert first.json()["activeChanged"]["by"] == "token:boss"
    # Then it refuses executions, and the resource and an Event say who did it
    refused = runner.post(url)
    assert refused.status_code == 409
    assert refused.json()["type"] == "https://overseer.dev/problems/job-inactive"
    resource = jobs(kube)["Sauvegarde é"]
    assert resource["spec"]["active"] is False
    assert resource["metadata"]["annotations"]["overseer.dev/active-changed-by"] == "token:boss"
    events = json.loads(
        kube.kubectl(
            "get",
            "events",
            "--field-selector",
            f"involvedObject.name={resource['metadata']['name']}",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert [e["reason"] for e in events] == ["Deactivated"]
    assert "token:boss" in events[0]["message"]
    # When git changes and a sync is requested through the API
    commit = upstream.commit({"more.yml": OTHERS.replace('"true"', '"echo hi"')}, "change")
    synced_now = boss.post("/sync", params={"repository": "jobs"})
    assert synced_now.status_code == 202, synced_now.text
    assert synced_now.json()["repositories"] == ["jobs"]
    annotations = kube.get("overseerrepository", "jobs")["metadata"]["annotations"]
    assert annotations["overseer.dev/requested-sync-by"] == "token:boss"
    eventually(
        lambda: jobs(kube)["Sauvegarde é"]["spec"]["source"]["commit"] == commit, 60, "the sync"
    )
    # Then the job is still inactive, as the API shows it
    assert jobs(kube)["Sauvegarde é"]["spec"]["active"] is False
    shown = eventually(
        lambda: (r := runner.get(url).json())["source"]["commit"] == commit and r, 30, "cache"
    )
    assert shown["active"] is False
    # And reactivating it lets it run again
    assert boss.put(url).json()["active"] is True
    created = runner.post(url)
    assert created.status_code == 201, created.text


def test_the_originals_example_job(
    kube: Kube, api: ApiProcess, synced: dict[str, dict[str, Any]]
) -> None:
    runner = api.client("runner")
    parameters = {"positional_var": "a b", "some_opt": "$(rm -rf /)"}
    # The job as the original wrote it runs my_command with exactly the two parameters,
    # its environment, as nobody:nogroup
    original = runner.post("/jobs/A%20job", json=parameters)
    assert original.status_code == 201, original.text
    detail = wait_until(runner, original.json()["url"], ENDED)
    assert detail["phase"] == "Complete", detail
    assert output_of(kube, synced["A job"], original.json()["id"]) == (
        b"a b|--some-opt|$(rm -rf /)|\nSOME_ENV_VAR=SOME_VALUE\nuid=65534 gid=65534\n"
    )
    # And the same job without user and group runs as the image's user
    created = runner.post("/jobs/A%20job%20without%20user", json=parameters)
    assert created.status_code == 201, created.text
    detail = wait_until(runner, created.json()["url"], ENDED)
    assert detail["phase"] == "Complete", detail
    out = output_of(kube, synced["A job without user"], created.json()["id"])
    assert out.startswith(b"a b|--some-opt|$(rm -rf /)|\nSOME_ENV_VAR=SOME_VALUE\nuid=")
    assert b"uid=65534" not in out


def output_of(kube: Kube, job: dict[str, Any], execution_id: str) -> bytes:
    name = f"{job['metadata']['name']}-{execution_id.replace('.', '-')}"
    [pod] = listed(kube, "pods", name)
    return stdout_of(kube, pod["metadata"]["name"])
