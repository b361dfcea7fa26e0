"""Job definitions from git become OverseerJobs (issue: definitions and the repository sync).

Real git repositories (file:// and git daemon), the real operator process, the real cluster.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.cluster import Kube
from tests.support.gitserver import Upstream, closed_port, serve_git_daemon
from tests.support.operator import OperatorProcess
from tests.support.overseer import (
    eventually,
    execution,
    jobs,
    repository,
    request_sync,
    wait_for_jobs,
)

pytestmark = pytest.mark.cluster

EXAMPLE_JOB = """\
- name: A job
  description: the original README's example
  cmdspec: example_command positional_var --some-opt some_opt
"""
EXAMPLE_COMMAND = ('#!/bin/sh\necho example_command "$@"\n', 0o755)


@pytest.fixture
def upstream(tmp_path: Any) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit({"example_job.yml": EXAMPLE_JOB, "bin/example_command": EXAMPLE_COMMAND}, "example")
    return repo


def test_example_repository_becomes_jobs_with_useful_columns(
    kube: Kube, operator: OperatorProcess, upstream: Upstream
) -> None:
    # Given the original README's layout in a repository
    # When an OverseerRepository points at it
    kube.apply(repository("examples", upstream.file_url))
    # Then its job exists, named from its display name, owned by the repository
    job = wait_for_jobs(kube, {"A job"})["A job"]
    assert re.fullmatch(r"a-job-[0-9a-f]+", job["metadata"]["name"])
    assert (
        job["spec"]["definition"]["cmdspec"] == "example_command positional_var --some-opt some_opt"
    )
    assert job["spec"]["source"] == {
        "repository": "examples",
        "file": "example_job.yml",
        "commit": upstream.head,
    }
    assert job["spec"]["active"] is True
    assert job["metadata"]["ownerReferences"][0]["kind"] == "OverseerRepository"
    # And the repository reports Ready with the commit and the job count
    repo = eventually(
        lambda: (
            (r := kube.get("overseerrepository", "examples")).get("status", {}).get("jobCount") == 1
            and r
        ),
        what="repository status",
    )
    ready = next(c for c in repo["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert repo["status"]["commit"] == upstream.head
    # And the bin/ bundle of that commit exists, immutable, with the script executable
    bundles = json.loads(
        kube.kubectl(
            "get", "configmaps", "-l", "app.kubernetes.io/managed-by=overseer", "-o", "json"
        ).stdout
    )["items"]
    assert len(bundles) == 1 and bundles[0]["immutable"] is True
    items = json.loads(bundles[0]["metadata"]["annotations"]["overseer.dev/bin-items"])
    assert items == [{"key": items[0]["key"], "path": "example_command", "mode": 0o755}]
    # And kubectl shows useful columns, and the category lists all three kinds
    table = kube.kubectl("get", "overseerjobs").stdout
    assert table.split("\n")[0].split()[:4] == ["NAME", "DISPLAY", "NAME", "ACTIVE"]
    assert "A job" in table
    repos_table = kube.kubectl("get", "osr").stdout
    assert upstream.head[:12] in repos_table and "True" in repos_table
    kube.apply(
        execution(job, "1489895624.840211", parameters={"positional_var": "a b", "some_opt": "x"})
    )
    everything = kube.kubectl("get", "overseer").stdout
    for kind in (
        "overseerrepository.overseer.dev/examples",
        "overseerjob.overseer.dev/a-job-",
        "overseerexecution.overseer.dev/",
    ):
        assert kind in everything


def test_commits_add_change_and_remove_jobs_and_noop_syncs_write_nothing(
    kube: Kube, operator: OperatorProcess, upstream: Upstream, tmp_path: Any
) -> None:
    # The audit log counts the writes of no-op syncs: checked first, never skipped halfway
    audit_log = kube.cluster.require_audit_log()
    with serve_git_daemon(upstream.bare.parent) as daemon:
        # Given a repository served by git daemon, synced every 2 seconds
        upstream.commit({"other.yaml": "- name: Änderung prüfen\n  command: [echo, one]\n"})
        kube.apply(repository("jobs", daemon.url(upstream), interval="2s"))
        before = wait_for_jobs(kube, {"A job", "Änderung prüfen"})
        # When a commit adds one job, changes one and removes one
        upstream.commit(
            {
                "other.yaml": "- name: Änderung prüfen\n  command: [echo, two]\n",
                "example_job.yml": None,
                "new.json": json.dumps([{"name": "Brand new", "command": "true"}]),
            }
        )
        request_sync(kube, "jobs")
        # Then the jobs follow the commit
        after = wait_for_jobs(kube, {"Änderung prüfen", "Brand new"})
        assert after["Änderung prüfen"]["spec"]["definition"]["command"] == ["echo", "two"]
        assert (
            after["Änderung prüfen"]["metadata"]["uid"]
            == before["Änderung prüfen"]["metadata"]["uid"]
        )
        # And the API's active flag survives syncs
        name = after["Brand new"]["metadata"]["name"]
        kube.kubectl(
            "patch",
            "overseerjob",
            name,
            "--type=merge",
            "-p",
            '{"spec":{"active":false}}',
            "--field-manager=overseer-api",
        )
        upstream.commit({"new.json": json.dumps([{"name": "Brand new", "command": "false"}])})
        eventually(
            lambda: jobs(kube)["Brand new"]["spec"]["definition"]["command"] == "false",
            what="update",
        )
        assert jobs(kube)["Brand new"]["spec"]["active"] is False
        # When syncs find nothing new
        operator.wait_for_log("done with 0 API writes")
        seen = operator.log().count("done with 0 API writes")
        offset = audit_log.stat().st_size
        operator.wait_for_log("done with 0 API writes", count=seen + 3, timeout=30)
        # Then the API server received no write in the namespace while they ran
        writes = kube.cluster.audited_writes(offset, kube.namespace)
        assert writes == [], [(w["verb"], w["requestURI"], w["userAgent"]) for w in writes]


BAD_FILES = {
    "broken.yml": ("- name: Broken\n  command: [echo\n", "broken.yml", None),
    "unknown.yml": (
        "- name: Unknown field\n  command: 'true'\n  colour: blue\n",
        "unknown.yml",
        "colour",
    ),
    "undeclared.yml": (
        "- name: Undeclared\n  parameters:\n    who: {}\n  cmdspec: greet who --loud volume\n",
        "undeclared.yml",
        "cmdspec",
    ),
    "dup1.yml": ("- name: Twice\n  command: 'true'\n", "dup1.yml", "name"),
    "dup2.yml": ("- name: Twice\n  command: 'false'\n", "dup2.yml", "name"),
}


def test_bad_definitions_are_reported_precisely_and_keep_previous_jobs(
    kube: Kube, operator: OperatorProcess, upstream: Upstream
) -> None:
    # Given a synced repository whose files each define one job
    upstream.commit({name: f"- name: Good {name}\n  command: 'true'\n" for name in BAD_FILES})
    kube.apply(repository("jobs", upstream.file_url))
    good = wait_for_jobs(kube, {"A job"} | {f"Good {name}" for name in BAD_FILES})
    # When a commit breaks each file in a different way
    upstream.commit({name: text for name, (text, _, _) in BAD_FILES.items()})
    request_sync(kube, "jobs")

    # Then the repository says what is wrong, file by file, and is not Ready
    def errors() -> list[dict[str, Any]] | None:
        status = kube.get("overseerrepository", "jobs").get("status", {})
        return status.get("errors") if status.get("commit") == upstream.head else None

    reported = eventually(errors, what="errors in status")
    by_file = {e["file"]: e for e in reported}
    assert set(by_file) == set(BAD_FILES)
    for _, file, field in BAD_FILES.values():
        assert by_file[file].get("field") == field, by_file[file]
        assert by_file[file]["message"]
    assert by_file["broken.yml"]["line"] >= 1
    assert "colour" in by_file["unknown.yml"]["message"]
    assert "volume" in by_file["undeclared.yml"]["message"]
    assert "dup2.yml" in by_file["dup1.yml"]["message"]
    status = kube.get("overseerrepository", "jobs")["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidDefinitions")
    # And each error is a Warning Event on the repository
    events = json.loads(
        kube.kubectl(
            "get", "events", "--field-selector", "involvedObject.name=jobs", "-o", "json"
        ).stdout
    )["items"]
    messages = [e["message"] for e in events if e["reason"] == "InvalidDefinition"]
    for file in BAD_FILES:
        assert any(m.startswith(file) for m in messages), (file, messages)
    # And the jobs those files defined before are untouched
    after = jobs(kube)
    assert set(after) == set(good)
    for name, job in good.items():
        assert after[name]["metadata"]["resourceVersion"] == job["metadata"]["resourceVersion"]


def test_unreachable_server_is_retried_with_backoff_and_reported(
    kube: Kube, operator: OperatorProcess, upstream: Upstream
) -> None:
    # Given a repository whose git server does not answer
    port = closed_port()
    kube.apply(repository("jobs", f"git://127.0.0.1:{port}/jobs.git"))

    # Then the status says so, with the reason and what happens next
    def synced() -> dict[str, Any] | None:
        status = kube.get("overseerrepository", "jobs").get("status", {})
        return next((c for c in status.get("conditions", []) if c["type"] == "Synced"), None)

    condition = eventually(synced, what="Synced condition")
    assert (condition["status"], condition["reason"]) == ("False", "Unreachable")
    # And the operator retries with growing delays (1s, 2s, 4s, capped at 5s in tests)
    log = operator.wait_for_log("retrying in 4s", timeout=30)
    delays = [int(d) for d in re.findall(r"retrying in (\d+)s", log)]
    assert delays[:3] == [1, 2, 4]
    # When the URL is fixed
    kube.apply(repository("jobs", upstream.file_url))
    # Then it recovers at once (the spec change wakes the sync) and becomes Ready
    wait_for_jobs(kube, {"A job"}, timeout=20)
    condition = eventually(
        lambda: (c := synced()) and c["status"] == "True" and c, what="Synced again"
    )
    assert condition["reason"] == "Fetched"


def test_suspended_repository_syncs_nothing_until_resumed(
    kube: Kube, operator: OperatorProcess, upstream: Upstream
) -> None:
    # Given a suspended repository
    kube.apply(repository("jobs", upstream.file_url, suspend=True))

    # Then it says so and defines no job
    def ready() -> dict[str, Any] | None:
        status = kube.get("overseerrepository", "jobs").get("status", {})
        return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)

    condition = eventually(ready, what="Ready condition")
    assert (condition["status"], condition["reason"]) == ("False", "Suspended")
    assert jobs(kube) == {}
    # When it is resumed, it syncs at once
    kube.apply(repository("jobs", upstream.file_url, suspend=False))
    wait_for_jobs(kube, {"A job"}, timeout=20)
