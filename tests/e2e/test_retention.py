"""Finished executions give their Job back once the output is archived, and expire if told.

The real operator, with ``OVERSEER_FINISHED_JOB_TTL=0`` (Jobs deleted as soon as the log
is archived) and a short ``OVERSEER_EXECUTION_TTL``: the test watches the Job, the pod,
the archive and the execution go, in that order, and nothing else change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_execution_output import Archive
from tests.e2e.test_executions import ENDED, execute, listed, statuses, wait_for_phase
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

JOBS = yaml.safe_dump([{"name": "Hello", "command": ["sh", "-c", "printf 'hello\\n'; echo e >&2"]}])
# Long enough for the checks between the end and the TTL on a loaded machine (make test
# runs 4 workers on 2 cores: 25 s was once too short).
EXECUTION_TTL = 60


def test_the_job_goes_once_archived_and_the_execution_with_its_output_at_its_ttl(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "a job")
    archive = Archive(tmp_path / "archive", kube.namespace)
    env = {
        "OVERSEER_ARCHIVE_DIR": str(archive.root),
        "OVERSEER_FINISHED_JOB_TTL": "0",
        "OVERSEER_EXECUTION_TTL": f"{EXECUTION_TTL}s",
    }
    workdir = tmp_path / "operator"
    workdir.mkdir()
    with run_operator(kube.cluster, kube.namespace, workdir, extra_env=env) as operator:
        try:
            kube.apply(repository("jobs", upstream.file_url))
            job = wait_for_jobs(kube, {"Hello"})["Hello"]
            # When an execution completes
            name, _ = execute(kube, job)
            status = wait_for_phase(kube, name, ENDED)
            assert status["phase"] == "Complete", status
            # Then, once its log is archived, its Job and pod are deleted
            archive.wait_complete(name)
            eventually(
                lambda: listed(kube, "jobs", name) == [] and listed(kube, "pods", name) == [],
                timeout=60,
                what="the Job and its pod to be deleted",
            )
            operator.wait_for_log(f"output archived; deleting Job {name}")
            # And the execution keeps its outcome, and the archive its output
            after: dict[str, Any] = wait_for_phase(kube, name, {"Complete"})
            assert statuses(after) == ["start", "complete"]
            assert after["exitCode"] == 0
            assert archive.read(name, "stdout") == b"hello\n"
            assert archive.read(name, "stderr") == b"e\n"
            # And past its TTL the execution is deleted, with its output
            eventually(
                lambda: "NotFound" in kube.kubectl("get", "osx", name, check=False).stderr,
                timeout=EXECUTION_TTL + 60,
                what="the execution to be deleted",
            )
            assert not (archive.root / kube.namespace / name).exists()
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
