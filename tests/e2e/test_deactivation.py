"""A deactivated job runs no execution, however it is made, and stays deactivated
when it leaves git and comes back.

Real git repository, the real operator process, the real cluster. A deactivation is a
merge patch of ``spec.active`` under a field manager of its own, as the API makes it.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import eventually, execution, jobs, repository, request_sync
from tests.support.overseer import wait_for_jobs as wait_for_job_names

pytestmark = pytest.mark.cluster

JOBS = """\
- name: Nap
  command: [sleep, "1"]
- name: Limited nap
  concurrency: {limit: 1, policy: queue}
  command: [sleep, "1"]
"""
OTHER = "- name: Other\n  command: 'true'\n"
ENDED = {"Complete", "Failed", "TimedOut", "Killed"}
API_MANAGER = "overseer-api"


def set_active(kube: Kube, job: dict[str, Any], active: bool) -> None:
    """What the API's DELETE / PUT on /jobs/{name} do."""
    kube.kubectl(
        "patch",
        "overseerjob",
        job["metadata"]["name"],
        "--type=merge",
        f"--field-manager={API_MANAGER}",
        "-p",
        json.dumps({"spec": {"active": active}}),
    )


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


def warning_reasons(kube: Kube, name: str) -> set[str]:
    out = kube.kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    return {e["reason"] for e in json.loads(out)["items"] if e["type"] == "Warning"}


def has_warning(kube: Kube, name: str, reason: str) -> bool:
    return reason in warning_reasons(kube, name)


def repository_status(kube: Kube) -> dict[str, Any]:
    status: dict[str, Any] = kube.get("overseerrepository", "jobs").get("status") or {}
    return status


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit({"jobs.yml": JOBS, "other.yml": OTHER}, "jobs")
    return repo


def test_an_execution_of_a_deactivated_job_is_refused_however_it_is_made(
    kube: Kube, operator: OperatorProcess, upstream: Upstream
) -> None:
    # Given two synced jobs (one with a concurrency limit), deactivated as the API does it
    kube.apply(repository("jobs", upstream.file_url))
    synced = wait_for_job_names(kube, {"Nap", "Limited nap", "Other"})
    for job_name in ("Nap", "Limited nap"):
        set_active(kube, synced[job_name], False)
    # When executions of them are created with kubectl: as a person, the API, a repeat
    made = []
    for job_name in ("Nap", "Limited nap"):
        for trigger in ("manual", "api", "repeat"):
            repeat_of = "1489895624.840211" if trigger == "repeat" else None
            manifest = execution(synced[job_name], trigger=trigger, repeat_of=repeat_of)
            kube.create(manifest)
            made.append(manifest["metadata"]["name"])
    # Then each fails at once: JobInactive, a fail event, a Warning Event, and no Job
    for name in made:
        status = ended(kube, name)
        assert (status["phase"], status["reason"]) == ("Failed", "JobInactive"), (name, status)
        assert "deactivated" in status["message"]
        assert [e["status"] for e in status["events"]] == ["fail"]
        assert status["events"][0]["data"] == {"reason": "JobInactive"}
        assert not status.get("jobName")
        assert eventually(partial(has_warning, kube, name, "JobInactive"), what="a Warning")
        assert kube.kubectl("get", "job", name, check=False).returncode != 0
    # And once activated again, the same job runs
    set_active(kube, synced["Nap"], True)
    again = execution(synced["Nap"], trigger="manual")
    kube.create(again)
    assert ended(kube, again["metadata"]["name"])["phase"] == "Complete"


def test_a_deactivation_survives_the_job_leaving_git_and_coming_back(
    kube: Kube, operator: OperatorProcess, upstream: Upstream
) -> None:
    # Given a synced job, deactivated as the API does it
    kube.apply(repository("jobs", upstream.file_url))
    nap = wait_for_job_names(kube, {"Nap", "Limited nap", "Other"})["Nap"]
    set_active(kube, nap, False)
    # When a commit removes it from git
    upstream.commit({"jobs.yml": None}, "remove the naps")
    request_sync(kube, "jobs")
    wait_for_job_names(kube, {"Other"})
    # Then the repository keeps its deactivation, by name
    kept = eventually(
        lambda: repository_status(kube).get("inactiveJobs"), what="status.inactiveJobs"
    )
    assert kept == ["Nap"]
    # And an execution of it made now (a repeat of an old one) is refused too
    orphan = execution(nap, trigger="repeat", repeat_of="1489895624.840211")
    kube.create(orphan)
    status = ended(kube, orphan["metadata"]["name"])
    assert (status["phase"], status["reason"]) == ("Failed", "JobInactive"), status
    # When a later commit brings it back
    upstream.commit({"jobs.yml": JOBS}, "the naps again")
    request_sync(kube, "jobs")
    back = wait_for_job_names(kube, {"Nap", "Limited nap", "Other"})
    # Then it comes back deactivated; the other job of its file, never deactivated, is active
    assert back["Nap"]["spec"]["active"] is False
    assert back["Limited nap"]["spec"]["active"] is True
    # And a commit that changes its definition (a sync's apply) leaves it deactivated
    upstream.commit({"jobs.yml": JOBS.replace('"1"]', '"2"]', 1)}, "a longer nap")
    request_sync(kube, "jobs")
    changed = eventually(
        lambda: (j := jobs(kube)["Nap"])["spec"]["definition"]["command"] == ["sleep", "2"] and j,
        what="the new definition",
    )
    assert changed["spec"]["active"] is False
    assert repository_status(kube).get("inactiveJobs") == ["Nap"]
    # When it is activated again, the next sync forgets the deactivation
    set_active(kube, changed, True)
    request_sync(kube, "jobs")
    eventually(lambda: not repository_status(kube).get("inactiveJobs"), what="it forgotten")
    assert jobs(kube)["Nap"]["spec"]["active"] is True
