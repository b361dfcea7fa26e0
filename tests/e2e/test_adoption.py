"""A re-created execution never takes an old one's place (issue 11, item 12).

Adoption checks the Job's owner uid, and the archive the execution's uid: an execution
deleted and created again under its old name runs a new Job and keeps only the new
run's output; a Job of that name that something else owns is never adopted. Real git
repository, the real operator process, the real cluster.
"""

# ruff: noqa: F811 - fixtures imported from tests.e2e.test_bounds are redefined as parameters

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_bounds import archive_dir, synced  # noqa: F401 - fixtures
from tests.e2e.test_executions import ENDED, wait_for_phase
from tests.support.cluster import Kube
from tests.support.overseer import eventually, execution

pytestmark = pytest.mark.cluster


def test_an_execution_recreated_under_its_old_name_runs_anew(
    kube: Kube, synced: dict[str, dict[str, Any]], archive_dir: Path
) -> None:
    # Given an execution that ran, whose Job is kept (keepFinishedFor: 1h)
    manifest = execution(synced["Who"])
    name = manifest["metadata"]["name"]
    kube.create(manifest)
    assert wait_for_phase(kube, name, ENDED)["phase"] == "Complete"
    first_job = kube.get("job", name)["metadata"]["uid"]
    stdout = archive_dir / kube.namespace / name / "stdout"
    first = eventually(lambda: stdout.exists() and stdout.read_bytes(), what="first output")
    # When the execution is deleted and created again under the same name
    kube.kubectl("delete", "overseerexecution", name, "--wait=true", "--timeout=60s")
    kube.create(manifest)
    # Then a new Job runs it, and it completes
    status = wait_for_phase(kube, name, ENDED, timeout=180)
    assert status["phase"] == "Complete", status
    job = kube.get("job", name)
    assert job["metadata"]["uid"] != first_job
    owner = kube.get("overseerexecution", name)["metadata"]["uid"]
    assert [o["uid"] for o in job["metadata"]["ownerReferences"]] == [owner]
    # And the output is the new run's alone
    pod = status["podName"]
    second = eventually(
        lambda: (data := stdout.read_bytes()) != first and data, what="the new output"
    )
    assert second == f"ran in {pod}\n".encode(), (first, second)


def test_a_job_of_that_name_owned_by_something_else_is_never_adopted(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # Given a Job already named as the execution's, owned by another object
    manifest = execution(synced["Who"])
    name = manifest["metadata"]["name"]
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}})
    other = kube.get("configmap", "owner")["metadata"]["uid"]
    squatter = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": other}
            ],
        },
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "localhost/nothing:dev"}],
                }
            },
        },
    }
    kube.create(squatter)
    # When the execution is created
    kube.create(manifest)
    # Then it fails, saying why, and the Job is left as it was
    status = wait_for_phase(kube, name, ENDED)
    assert (status["phase"], status["reason"]) == ("Failed", "JobNameTaken"), status
    assert name in status["message"]
    job = kube.get("job", name)
    assert [o["uid"] for o in job["metadata"]["ownerReferences"]] == [other]
