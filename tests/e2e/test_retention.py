"""Finished executions give their Job back once the output is archived, and expire if told.

The real operator, with ``OVERSEER_FINISHED_JOB_TTL=0`` (Jobs deleted as soon as the log
is archived) and a short ``OVERSEER_EXECUTION_TTL``: the test watches the Job, the pod,
the archive and the execution go, in that order, and nothing else change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


def scene(kube: Kube, tmp_path: Path, ttl: int) -> tuple[Upstream, Archive, dict[str, str]]:
    """A repository of one job, an archive, and the operator's settings: Jobs deleted as
    soon as their log is archived, executions after ``ttl`` seconds."""
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "a job")
    archive = Archive(tmp_path / "archive", kube.namespace)
    env = {
        "OVERSEER_ARCHIVE_DIR": str(archive.root),
        "OVERSEER_FINISHED_JOB_TTL": "0",
        "OVERSEER_EXECUTION_TTL": f"{ttl}s",
    }
    return upstream, archive, env


def test_the_job_goes_once_archived_and_the_execution_with_its_output_at_its_ttl(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    upstream, archive, env = scene(kube, tmp_path, EXECUTION_TTL)
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
            # And the operator keeps no state of its output in memory: the status has it
            assert operator.metrics()[("overseer_output_reports_held", frozenset())] == 0
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


RESTART_TTL = 40


def remove_pods(kube: Kube, name: str) -> None:
    """Delete the execution's pods, as the garbage collector does after their Job (which
    lags on a loaded cluster), finalizers and all."""
    for pod in [p["metadata"]["name"] for p in listed(kube, "pods", name)]:
        kube.kubectl("delete", "pod", pod, "--wait=false", check=False)
        patch = '{"metadata":{"finalizers":null}}'
        kube.kubectl("patch", "pod", pod, "--type=merge", "-p", patch, check=False)
    eventually(lambda: listed(kube, "pods", name) == [], timeout=60, what="the pod gone")


def settled_label(kube: Kube, name: str) -> str:
    path = "jsonpath={.metadata.labels.overseer\\.dev/settled}"
    return kube.kubectl("get", "osx", name, "-o", path).stdout


def test_a_settled_execution_expires_after_a_restart(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    upstream, archive, env = scene(kube, tmp_path, RESTART_TTL)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    try:
        # Given an execution that completed, gave its Job back and was labelled settled
        with run_operator(kube.cluster, kube.namespace, first, extra_env=env) as operator:
            kube.apply(repository("jobs", upstream.file_url))
            job = wait_for_jobs(kube, {"Hello"})["Hello"]
            name, _ = execute(kube, job)
            assert wait_for_phase(kube, name, ENDED)["phase"] == "Complete"
            archive.wait_complete(name)
            eventually(
                lambda: listed(kube, "jobs", name) == [] and settled_label(kube, name) == "true",
                timeout=RESTART_TTL - 10,
                what="the Job deleted and the execution labelled settled",
            )
            operator.check_alive()
        # When the operator that would have expired it stops before its TTL, its pod goes
        # too (nothing left to lead a new operator to it), and another operator starts
        remove_pods(kube, name)
        ended = kube.kubectl("get", "osx", name, "-o", "jsonpath={.status.completionTime}")
        expires = datetime.fromisoformat(ended.stdout) + timedelta(seconds=RESTART_TTL)
        with run_operator(kube.cluster, kube.namespace, second, extra_env=env) as operator:
            # Then the execution and its output are deleted past the TTL, at most the
            # sweep's gap (60 s at this TTL) late, with 30 s for a loaded machine
            eventually(
                lambda: "NotFound" in kube.kubectl("get", "osx", name, check=False).stderr,
                timeout=max(10.0, (expires - datetime.now(UTC)).total_seconds() + 90),
                what="the execution to be deleted after the restart",
            )
            assert datetime.now(UTC) >= expires
            assert not (archive.root / kube.namespace / name).exists()
            operator.wait_for_log(f"execution {kube.namespace}/{name}: ended")
            operator.check_alive()
    finally:
        kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
