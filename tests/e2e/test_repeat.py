"""A repeat of an older execution runs the scripts that execution ran.

Real git repository, the real operator process, the real cluster. The repeat is an
OverseerExecution with the old execution's frozen definition and commit, as the API's
repeat makes it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from overseer_library import protocol
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import eventually, execution, repository, request_sync, wait_for_jobs

pytestmark = pytest.mark.cluster

JOBS = "- name: Version\n  command: [version]\n"
ENDED = {"Complete", "Failed", "TimedOut", "Killed"}


def script(version: int) -> tuple[str, int]:
    return f"#!/bin/sh\necho v{version}\n", 0o755


def ended(kube: Kube, name: str) -> dict[str, Any]:
    status: dict[str, Any] = eventually(
        lambda: (
            (s := kube.get("overseerexecution", name).get("status") or {}).get("phase") in ENDED
            and s
        ),
        timeout=120,
        what=f"{name} to end",
    )
    return status


def stdout_of(kube: Kube, pod: str) -> bytes:
    log = kube.logs(pod).encode()
    return b"".join(
        r.data
        for r in protocol.decode_all([log])
        if isinstance(r, protocol.Output) and r.stream == "stdout"
    )


def synced_commit(kube: Kube) -> str | None:
    commit: str | None = (kube.get("overseerrepository", "jobs").get("status") or {}).get("commit")
    return commit


def is_synced(kube: Kube, commit: str) -> bool:
    return synced_commit(kube) == commit


def test_a_repeat_of_an_execution_three_commits_old_runs_its_commits_scripts(
    kube: Kube, operator: OperatorProcess, tmp_path: Path
) -> None:
    # Given an execution that ran bin/version of commit 1
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    first = upstream.commit({"jobs.yml": JOBS, "bin/version": script(1)}, "version 1")
    kube.apply(repository("jobs", upstream.file_url))
    job = wait_for_jobs(kube, {"Version"})["Version"]
    eventually(lambda: synced_commit(kube) == first, what="commit 1 synced")
    old = execution(job, commit=first, trigger="api")
    kube.create(old)
    old_status = ended(kube, old["metadata"]["name"])
    assert old_status["phase"] == "Complete", old_status
    assert stdout_of(kube, old_status["podName"]) == b"v1\n"
    # And three later commits synced, each with another bin/version
    for version in (2, 3, 4):
        commit = upstream.commit({"bin/version": script(version)}, f"version {version}")
        request_sync(kube, "jobs")
        eventually(partial(is_synced, kube, commit), what=f"commit {version} synced")
    # When the old execution is repeated: its frozen definition and commit
    repeat = execution(job, trigger="repeat", repeat_of=old["spec"]["executionId"], commit=first)
    repeat["spec"]["definition"] = old["spec"]["definition"]
    kube.create(repeat)
    # Then it completes, and ran commit 1's script
    status = ended(kube, repeat["metadata"]["name"])
    assert status["phase"] == "Complete", status
    assert stdout_of(kube, status["podName"]) == b"v1\n"
    # And a new execution runs the synced commit's script
    new = execution(job, commit=synced_commit(kube), trigger="api")
    kube.create(new)
    assert stdout_of(kube, ended(kube, new["metadata"]["name"])["podName"]) == b"v4\n"
