"""A job with ``retries`` whose first attempt fails: both attempts' output is archived,
the execution ends Complete, and its Job is collected once the last attempt's log is read.

The real operator (``OVERSEER_FINISHED_JOB_TTL=0``), the real cluster; the job asks an
HTTP server of the test, on the address pods reach this host at, whether to fail: the
first request gets a 500, the next a 200, so the first attempt fails and the retry passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.test_execution_output import Archive
from tests.e2e.test_executions import ENDED, execute, listed, wait_for_phase
from tests.support import recorder
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

ASK = """\
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=30)
except urllib.error.HTTPError:
    print("attempt 1: failing", flush=True)
    sys.exit(1)
print("attempt 2: passing", flush=True)
"""


def test_a_retried_execution_archives_both_attempts_and_gives_its_job_back(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    archive = Archive(tmp_path / "archive", kube.namespace)
    env = {"OVERSEER_ARCHIVE_DIR": str(archive.root), "OVERSEER_FINISHED_JOB_TTL": "0"}
    workdir = tmp_path / "operator"
    workdir.mkdir()
    with (
        recorder.serve(kube.cluster.node_address()) as server,
        run_operator(kube.cluster, kube.namespace, workdir, extra_env=env) as operator,
    ):
        try:
            # Given a job with one retry, whose first attempt fails and second passes
            server.script.append((500, 0.0))
            command = ["python3", "-c", ASK, f"{server.url}/attempt"]
            jobs = [{"name": "Flaky", "command": command, "retries": 1}]
            upstream = Upstream.create(tmp_path / "git" / "jobs.git")
            upstream.commit({"jobs.yml": yaml.safe_dump(jobs)}, "a flaky job")
            kube.apply(repository("jobs", upstream.file_url))
            job = wait_for_jobs(kube, {"Flaky"})["Flaky"]
            # When it runs
            name, _ = execute(kube, job)
            status = wait_for_phase(kube, name, ENDED, timeout=180)
            # Then it ends Complete after two attempts
            assert status["phase"] == "Complete", status
            assert len(server.wait_for(2)) == 2
            # And both attempts' output is archived, in order, and the archive is whole
            state = archive.wait_complete(name)
            assert state["pod"] == status["podName"]
            assert archive.read(name, "stdout") == b"attempt 1: failing\nattempt 2: passing\n"
            # And the Job and its pods are given back once the retry's log is archived
            eventually(
                lambda: listed(kube, "jobs", name) == [] and listed(kube, "pods", name) == [],
                timeout=90,
                what="the Job and its pods to be deleted",
            )
            status = eventually(
                lambda: (
                    s
                    if (s := wait_for_phase(kube, name, {"Complete"}))
                    .get("archive", {})
                    .get("state")
                    == "Complete"
                    else None
                ),
                what="the status to say the output is complete",
            )
            assert status["archive"]["stdout"] == {"size": 38}
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
