"""The API executes, repeats and signals real jobs: real git, operator, pods and HTTP.

The API runs as a process beside the operator (``tests/support/api_process.py``), and
every step is an HTTP request a client would send; what the job received is read from
its pod's log.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from overseer.core import names
from tests.e2e.test_executions import ENDED
from tests.support.api_process import ApiProcess
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.overseer import eventually, jobs, repository, request_sync, wait_for_jobs

pytestmark = pytest.mark.cluster

ARGV = (
    "#!/usr/bin/python3\nimport json, sys\nsys.stdout.write(json.dumps(sys.argv[1:]))\n",
    0o755,
)
TRAP = """\
trap 'echo got HUP' HUP
trap 'echo got USR1' USR1
trap 'echo got TERM; exit 143' TERM
echo ready
while :; do sleep 0.2; done
"""
JOBS = yaml.safe_dump(
    [
        {
            "name": "Argv ✓ a/b",
            "cmdspec": "argv first --opt opt",
            "parameters": {"first": {"required": True}, "opt": {"default": "-"}},
        },
        {"name": "Trap", "script": TRAP},
        {"name": "Version", "command": "echo one"},
    ],
    allow_unicode=True,
)
NAMES = {"Argv ✓ a/b", "Trap", "Version"}


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit({"jobs.yml": JOBS, "bin/argv": ARGV}, "jobs")
    return repo


@pytest.fixture
def synced(kube: Kube, api: ApiProcess, upstream: Upstream) -> dict[str, dict[str, Any]]:
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, NAMES)


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def wait_until(client: httpx.Client, url: str, phases: set[str], timeout: float = 120) -> Any:
    def check() -> Any:
        detail = client.get(url).json()
        return detail if detail.get("phase") in phases else None

    return eventually(check, timeout, f"{url} to be one of {sorted(phases)}")


def output(client: httpx.Client, url: str) -> bytes:
    """An ended execution's stdout through the API, whole (the route waits for the archive;
    the pod's own log may be gone: the operator deletes the Job once it is archived)."""
    answer = client.get(f"{url}/stdout")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Overseer-Output-State"] == "Complete", answer.headers
    return answer.content


HOSTILE = {"first": "$(rm -rf /); echo 'q' \"dq\"\nline2", "opt": "-rf ;"}


def test_hostile_parameters_arrive_exactly_through_a_unicode_slashed_name(
    kube: Kube, api: ApiProcess, synced: dict[str, dict[str, Any]]
) -> None:
    client = api.client()
    # When the job whose name holds a space, unicode and a slash is executed over HTTP
    response = client.post("/jobs/" + quote("Argv ✓ a/b"), json=HOSTILE)
    # Then it is created at once, and its URL is in Location
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == created["url"]
    assert created["url"] == f"{api.url}/jobs/Argv%20%E2%9C%93%20a%2Fb/{created['id']}"
    assert names.EXECUTION_ID_PATTERN.fullmatch(created["id"])
    # And it runs with exactly those arguments
    detail = wait_until(client, created["url"], ENDED)
    assert detail["phase"] == "Complete", detail
    assert detail["trigger"]["by"] == "token:runner"
    argv = json.loads(output(client, created["url"]))
    assert argv == [HOSTILE["first"], "--opt", HOSTILE["opt"]]
    # And a leading '-' positional, an unknown and a missing parameter are refused by name
    for parameters, field in (({"first": "-x"}, "first"), ({"first": "x", "nope": "1"}, "nope")):
        bad = client.post("/jobs/" + quote("Argv ✓ a/b"), json=parameters)
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == [field]
    # And the token never reached the log
    assert "exec-1f2e3d4c" not in api.log()


def test_signals_reach_the_jobs_trap_and_term_is_the_default(
    kube: Kube, api: ApiProcess, synced: dict[str, dict[str, Any]]
) -> None:
    client = api.client()
    created = client.post("/jobs/Trap").json()
    url = created["url"]
    wait_until(client, url, {"Running"})
    time.sleep(2)  # the trap is set once "ready" is printed; the pod runs by now
    # When HUP (by name) and USR1 (the original's bare form) are sent
    hup = client.put(url, params={"signal": "HUP"})
    assert hup.status_code == 202, hup.text
    assert hup.json()["signal"] == "SIGHUP"
    usr1 = client.put(f"{url}?USR1")
    assert usr1.json()["signal"] == "SIGUSR1"
    unknown = client.put(url, params={"signal": "NOPE"})
    assert unknown.status_code == 400
    assert "TERM, HUP" in unknown.json()["detail"]

    def delivered() -> Any:
        signals = client.get(url).json()["signals"]
        return signals if all(s["result"] for s in signals) else None

    signals = eventually(delivered, 60, "both signals delivered")
    assert [(s["signal"], s["result"]) for s in signals] == [
        ("SIGHUP", "Sent"),
        ("SIGUSR1", "Sent"),
    ]
    # When a PUT without a signal is sent: TERM, which the trap turns into exit 143
    term = client.put(url)
    assert term.json()["signal"] == "SIGTERM"
    detail = wait_until(client, url, ENDED)
    assert detail["phase"] == "Killed", detail
    out = output(client, url)
    assert b"got HUP\n" in out
    assert b"got USR1\n" in out
    assert out.index(b"got HUP") < out.index(b"got USR1") < out.index(b"got TERM")
    # Then a signal to the finished execution is refused
    late = client.put(url, params={"signal": "HUP"})
    assert late.status_code == 409


def changed_after_a_first_execution(
    kube: Kube, api: ApiProcess, upstream: Upstream
) -> tuple[httpx.Client, dict[str, Any]]:
    """Given "Version" ran once (echo one), then git changed it (echo two) and synced."""
    client = api.client()
    first: dict[str, Any] = client.post("/jobs/Version").json()
    assert wait_until(client, first["url"], ENDED)["phase"] == "Complete"
    new_commit = upstream.commit({"jobs.yml": JOBS.replace("echo one", "echo two")}, "two")
    request_sync(kube, "jobs")
    eventually(
        lambda: jobs(kube)["Version"]["spec"]["source"]["commit"] == new_commit, 60, "the sync"
    )
    return client, first


def test_repeat_freezes_the_old_definition_and_latest_runs_the_new(
    kube: Kube, api: ApiProcess, synced: dict[str, dict[str, Any]], upstream: Upstream
) -> None:
    client, first = changed_after_a_first_execution(kube, api, upstream)
    old_commit = synced["Version"]["spec"]["source"]["commit"]
    # When the first execution is repeated
    again = client.post(first["url"])
    assert again.status_code == 201, again.text
    # Then the repeat holds the old definition and commit, and says what it repeats
    repeated = client.get(again.json()["url"]).json()
    assert repeated["trigger"] == {"type": "repeat", "by": "token:runner", "repeatOf": first["id"]}
    assert repeated["commit"] == old_commit
    assert repeated["definition"]["command"] == "echo one"
    # And ?revision=latest runs what git holds now
    latest = client.post(first["url"], params={"revision": "latest"}).json()
    assert wait_until(client, latest["url"], ENDED)["phase"] == "Complete"
    assert output(client, latest["url"]) == b"two\n"


def test_a_repeat_after_git_changed_runs_the_old_definition(
    kube: Kube, api: ApiProcess, synced: dict[str, dict[str, Any]], upstream: Upstream
) -> None:
    client, first = changed_after_a_first_execution(kube, api, upstream)
    again = client.post(first["url"]).json()
    repeated = wait_until(client, again["url"], ENDED)
    assert repeated["phase"] == "Complete", (repeated["reason"], repeated["message"])
    assert output(client, again["url"]) == b"one\n"
