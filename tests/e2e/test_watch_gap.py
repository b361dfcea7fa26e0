"""A deletion lost in a watch gap never leaves an execution Running: the resync ends it;
nor a job missing for good: the next sync writes it again.

Issue 13, item 3. The real operator talks to the real API server through a loopback
proxy (``tests/support/watch_gap.py``). While an execution runs, its Job and pod are
deleted (``--force --grace-period=0``) inside a gap of the pod and Job watches: their
events are lost, and the gap ends as an API server that forgot the versions in between
ends a watch, with ``410 Gone``. kopf lists again; the Job and pod are simply absent
from the list, so no ``DELETED`` event ever comes, and the operator's watch cache still
holds them as they were, running. Only the periodic resync
(``OVERSEER_RESYNC_INTERVAL``, a few seconds here) can end the execution: Failed,
``PodDeleted`` (docs/executions.rst), within two intervals and some slack, with one Job
and one terminal event.

The operator's own OverseerJob watch (not kopf's) reports a job absent from the new list
as deleted: an OverseerJob deleted by hand in a gap of that watch is missing from the
sync's index, so the next sync writes it again (docs/decisions.rst).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from overseer.core import execution_job
from tests.e2e.test_executions import execute, status_of, wait_for_phase
from tests.support import chaos, watch_gap
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, repository, request_sync, wait_for_jobs

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(360)]

RESYNC = 3.0
"""The operator's resync interval in this test (seconds; the default is 5 minutes)."""
BOUND = 2 * RESYNC + 30
"""How soon after the deletion the execution must have ended: the pod's deletion
itself, the round in progress, the next one, and slack for a loaded machine."""
JOBS = "- name: Sleeper\n  command: [sleep, '600']\n"
GAPPED = r"/(pods|jobs)$"
"""The watches the gap loses events of: the execution's pod and Job (not the execution)."""
TERMINAL_EVENTS = {"complete", "fail", "time-out", "killed"}


@pytest.fixture
def proxy(kube: Kube) -> Iterator[watch_gap.GapProxy]:
    with watch_gap.serve(kube.cluster.kubeconfig) as served:
        yield served


@pytest.fixture
def operator_behind_proxy(
    kube: Kube, overseer_crds: None, tmp_path: Path, proxy: watch_gap.GapProxy
) -> Iterator[OperatorProcess]:
    env = {
        "KUBECONFIG": str(proxy.kubeconfig(tmp_path)),
        "OVERSEER_RESYNC_INTERVAL": f"{RESYNC}s",
    }
    with run_operator(kube.cluster, kube.namespace, tmp_path, extra_env=env) as process:
        yield process
        kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


@pytest.fixture
def sleeper(kube: Kube, operator_behind_proxy: OperatorProcess, tmp_path: Path) -> dict[str, Any]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "a job that runs for long")
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, {"Sleeper"})["Sleeper"]


def absent(kube: Kube, kind: str, name: str) -> bool:
    found = kube.kubectl("get", kind, name, "--ignore-not-found", "-o", "name", check=False)
    return found.returncode == 0 and not found.stdout.strip()


def overseer_lines(operator: OperatorProcess) -> str:
    """The operator's own last lines (its --verbose log holds the HTTP client's too)."""
    lines = [line for line in operator.log().splitlines() if "] overseer." in line]
    return "\n".join(lines[-15:])


def lost_deletion(proxy: watch_gap.GapProxy, pod: str) -> bool:
    return any(
        e.get("type") == "DELETED" and e["object"]["metadata"]["name"] == pod for e in proxy.dropped
    )


def test_a_deletion_lost_in_a_watch_gap_fails_the_execution_at_the_next_resync(
    kube: Kube,
    proxy: watch_gap.GapProxy,
    operator_behind_proxy: OperatorProcess,
    sleeper: dict[str, Any],
) -> None:
    with chaos.JobWatch(kube.cluster, kube.namespace).running() as jobs:
        # Given an execution running
        name, _ = execute(kube, sleeper)
        status = wait_for_phase(kube, name, {"Running"}, timeout=180)
        pod, job = status["podName"], execution_job.job_name(name)
        # When its Job and pod are deleted in a gap of the pod and Job watches
        with proxy.gap(GAPPED):
            deleted_at = time.monotonic()
            for kind, target in (("job", job), ("pod", pod)):
                kube.kubectl("delete", kind, target, "--force", "--grace-period=0", "--wait=false")
            eventually(lambda: absent(kube, "job", job) and absent(kube, "pod", pod), 90, "gone")
            eventually(lambda: lost_deletion(proxy, pod), 30, "the pod's DELETED event lost")
            lists_before = len(proxy.lists)
        # Then the watches list again, without them (no DELETED event ever comes)
        eventually(
            lambda: any(p.endswith("/pods") for p in proxy.lists[lists_before:]), 30, "a re-list"
        )
        # And a resync ends the execution: Failed, PodDeleted, within its bound
        try:
            status = wait_for_phase(kube, name, {"Complete", "Failed", "TimedOut", "Killed"}, BOUND)
        except AssertionError:
            phase = status_of(kube, name).get("phase")
            raise AssertionError(
                f"{name} still {phase} {BOUND:.0f}s after the deletion: the lost deletion was"
                f" never noticed\n{overseer_lines(operator_behind_proxy)}"
            ) from None
        took = time.monotonic() - deleted_at
        time.sleep(RESYNC)  # a round more: nothing is made again
    assert (status["phase"], status["reason"]) == ("Failed", "PodDeleted"), status
    assert took <= BOUND
    assert len(jobs.uids[name]) == 1, jobs.uids
    status = status_of(kube, name)
    terminal = [e for e in status["events"] if e["status"] in TERMINAL_EVENTS]
    assert [e["status"] for e in terminal] == ["fail"], status["events"]
    assert absent(kube, "job", job)
    operator_behind_proxy.check_alive()


def test_a_job_deleted_in_a_watch_gap_is_written_again_by_the_next_sync(
    kube: Kube,
    proxy: watch_gap.GapProxy,
    operator_behind_proxy: OperatorProcess,
    sleeper: dict[str, Any],
) -> None:
    # Given a repository's job, synced
    job = sleeper["metadata"]["name"]
    # When it is deleted by hand in a gap of the OverseerJob watch
    with proxy.gap(r"/overseerjobs$"):
        kube.kubectl("delete", "overseerjob", job, "--wait=true")
        eventually(
            lambda: any(
                e.get("type") == "DELETED" and e["object"]["metadata"]["name"] == job
                for e in proxy.dropped
            ),
            30,
            "the job's DELETED event lost",
        )
        lists_before = len(proxy.lists)
    eventually(
        lambda: any(p.endswith("/overseerjobs") for p in proxy.lists[lists_before:]),
        30,
        "a re-list",
    )
    time.sleep(1)  # the new list taken in
    # And a sync is requested
    request_sync(kube, "jobs")
    # Then the sync writes the job again
    eventually(lambda: not absent(kube, "overseerjob", job), 60, "the job written again")
    operator_behind_proxy.check_alive()
