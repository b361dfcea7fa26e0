"""The executions' ServiceAccount: created once per namespace by an operator process, and
made again when someone deleted it by hand, so the next execution still runs.

Real git repository, the real operator process, the real cluster; the operator's own
count of its API calls (logged on SIGUSR2) says how often it created the ServiceAccount.
"""

from __future__ import annotations

import functools
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from overseer.core import execution_account
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, execution, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

JOBS = '- name: Quick\n  command: "true"\n'
ENDED = {"Complete", "Failed", "TimedOut", "Killed"}
GRACE = 5
"""OVERSEER_EXECUTION_ACCOUNT_GRACE here (default 1 minute), so the test is short."""
CALLS = "API calls so far: "


def service_account_creates(operator: OperatorProcess) -> int:
    """How many ServiceAccount creates the operator sent so far (201 or 409 alike)."""
    seen = operator.log().count(CALLS)
    operator.process.send_signal(signal.SIGUSR2)
    log = operator.wait_for_log(CALLS, count=seen + 1, timeout=30)
    calls = json.loads(log.rsplit(CALLS, 1)[1].splitlines()[0])
    return int(calls["writes"].get("create ServiceAccount", 0))


def ended(kube: Kube, name: str) -> dict[str, Any] | None:
    """The execution's status once it has ended, else None."""
    status: dict[str, Any] = kube.get("overseerexecution", name).get("status") or {}
    return status if status.get("phase") in ENDED else None


def run_all(kube: Kube, job: dict[str, Any], count: int, timeout: float) -> None:
    """Create COUNT executions of JOB at once; each must end Complete within TIMEOUT."""
    names = []
    for _ in range(count):
        manifest = execution(job)
        kube.create(manifest)
        names.append(manifest["metadata"]["name"])
        time.sleep(0.001)  # execution ids are microseconds: never two alike
    for name in names:
        status = eventually(functools.partial(ended, kube, name), timeout, f"{name} to end")
        assert status["phase"] == "Complete", status


def test_the_account_is_created_once_and_again_after_it_was_deleted(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "one quick job")
    settings = {"OVERSEER_EXECUTION_ACCOUNT_GRACE": f"{GRACE}s"}
    with run_operator(kube.cluster, kube.namespace, tmp_path, extra_env=settings) as operator:
        try:
            kube.apply(repository("jobs", upstream.file_url))
            job = wait_for_jobs(kube, {"Quick"})["Quick"]
            # When three executions start at once in a fresh namespace, then one more
            run_all(kube, job, 3, timeout=120)
            run_all(kube, job, 1, timeout=60)
            # Then each ran, and the operator created the ServiceAccount once
            assert service_account_creates(operator) == 1
            kube.get("serviceaccount", execution_account.NAME)
            # When someone deletes it by hand, and another execution starts
            kube.kubectl("delete", "serviceaccount", execution_account.NAME)
            started = time.monotonic()
            run_all(kube, job, 1, timeout=GRACE + 90)
            # Then that one still runs: its Job waited past the grace without a pod, and
            # the operator made the ServiceAccount again (the Job controller retries
            # within a minute)
            log = operator.log()
            assert "in case it was deleted" in log, log[-3000:]
            assert service_account_creates(operator) == 2
            kube.get("serviceaccount", execution_account.NAME)
            assert time.monotonic() - started < GRACE + 90
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
