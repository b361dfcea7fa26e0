"""Two repositories of one namespace defining the same job name: the first keeps it.

Real git repositories, the real operator process, the real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import eventually, jobs, repository, request_sync, wait_for_jobs

pytestmark = pytest.mark.cluster

FIRST = "- name: Backup\n  command: [echo, first]\n"
SECOND = "- name: Backup\n  command: [echo, second]\n- name: Report\n  command: 'true'\n"
SECOND_ALONE = "- name: Cleanup\n  command: 'true'\n"
HASH = "overseer.dev/spec-hash"
REPOSITORY_LABEL = "overseer.dev/repository"


def status_of(kube: Kube, name: str) -> dict[str, Any]:
    status: dict[str, Any] = kube.get("overseerrepository", name).get("status") or {}
    return status


def synced_at(kube: Kube, name: str, commit: str) -> dict[str, Any] | None:
    status = status_of(kube, name)
    return status if status.get("commit") == commit else None


def backup_owner_and_hash(kube: Kube) -> tuple[str, str, list[str]]:
    job = jobs(kube)["Backup"]
    return (
        job["metadata"]["labels"][REPOSITORY_LABEL],
        job["metadata"]["annotations"][HASH],
        job["spec"]["definition"]["command"],
    )


def test_the_first_repository_keeps_a_job_name_and_the_second_reports_it(
    kube: Kube, operator: OperatorProcess, tmp_path: Path
) -> None:
    # Given a repository "first" whose job Backup is synced
    first = Upstream.create(tmp_path / "git" / "first.git")
    first.commit({"jobs.yml": FIRST}, "backup")
    kube.apply(repository("first", first.file_url))
    wait_for_jobs(kube, {"Backup"})
    owner_before = backup_owner_and_hash(kube)
    assert owner_before[0] == "first"
    # When a second repository of the namespace defines Backup too (and another job
    # in the same file, and one in a file of its own)
    second = Upstream.create(tmp_path / "git" / "second.git")
    second.commit({"jobs.yml": SECOND, "alone.yml": SECOND_ALONE}, "backup too")
    kube.apply(repository("second", second.file_url))
    # Then its file fails with DuplicateJobName naming the owner; its other file syncs
    status = eventually(lambda: synced_at(kube, "second", second.head), what="second synced")
    [error] = status["errors"]
    assert (error["file"], error["job"], error["field"], error["reason"]) == (
        "jobs.yml",
        "Backup",
        "name",
        "DuplicateJobName",
    )
    assert "'first'" in error["message"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    wait_for_jobs(kube, {"Backup", "Cleanup"})
    # And after several sync rounds of both, nothing flaps: same owner, same hash
    for _ in range(4):
        request_sync(kube, "second")
        request_sync(kube, "first")
        first.commit({}, "another commit of the first")
        second.commit({}, "another commit of the second")
        request_sync(kube, "first")
        request_sync(kube, "second")
        eventually(lambda: synced_at(kube, "first", first.head), what="first synced")
        eventually(lambda: synced_at(kube, "second", second.head), what="second synced")
        assert backup_owner_and_hash(kube) == owner_before
    assert [e["reason"] for e in status_of(kube, "second")["errors"]] == ["DuplicateJobName"]
    assert set(jobs(kube)) == {"Backup", "Cleanup"}
    # When the first repository drops the job, the second gets it at its next sync
    first.commit({"jobs.yml": "- name: Other\n  command: 'true'\n"}, "no more backup")
    request_sync(kube, "first")
    eventually(lambda: "Backup" not in jobs(kube), what="first's Backup deleted")
    request_sync(kube, "second")
    moved = eventually(
        lambda: (
            (j := jobs(kube).get("Backup"))
            and j["metadata"]["labels"][REPOSITORY_LABEL] == "second"
            and j
        ),
        what="second's Backup",
    )
    assert moved["spec"]["definition"]["command"] == ["echo", "second"]
    assert eventually(lambda: not status_of(kube, "second").get("errors"), what="no error")
