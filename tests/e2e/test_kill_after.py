"""TERM escalates to KILL after the job's killAfter: a job that traps and ignores TERM
never keeps its concurrency slot, nor outlives its time-out, for long.

Real git repository, the real operator process, the real cluster, the library image.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from overseer_library import protocol
from tests.e2e.test_signals import run, send
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

STUBBORN = "trap 'echo ignored TERM' TERM; echo ready; while :; do sleep 1; done"
JOBS = f"""\
- name: Stubborn
  command: [sh, -c, "{STUBBORN}"]
  killAfter: 3s
  concurrency: {{limit: 1, policy: replace}}
- name: Stubborn and slow
  command: [sh, -c, "{STUBBORN}"]
  timeout: 3s
  killAfter: 2s
"""
ENDED = {"Complete", "Failed", "TimedOut", "Killed"}


def status_of(kube: Kube, name: str) -> dict[str, Any]:
    status: dict[str, Any] = kube.get("overseerexecution", name).get("status") or {}
    return status


def phase_in(kube: Kube, name: str, phases: set[str], timeout: float) -> dict[str, Any]:
    status: dict[str, Any] = eventually(
        lambda: (s := status_of(kube, name)).get("phase") in phases and s,
        timeout=timeout,
        what=f"{name} to be {sorted(phases)}",
    )
    return status


@pytest.fixture
def synced(kube: Kube, operator: OperatorProcess, tmp_path: Path) -> dict[str, dict[str, Any]]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "jobs that ignore TERM")
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, {"Stubborn", "Stubborn and slow"})


def test_replace_kills_a_job_ignoring_term_after_kill_after_and_starts_the_new_one(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # Given a running execution of a job that traps and ignores TERM (killAfter 3s)
    old = run(kube, synced["Stubborn"])
    phase_in(kube, old, {"Running"}, 120)
    time.sleep(2)  # its trap is set
    # When a second execution comes in (policy replace: the old one is sent SIGTERM)
    new = run(kube, synced["Stubborn"])
    # Then the old one, ignoring TERM, is killed with SIGKILL killAfter later
    ended = phase_in(kube, old, ENDED, 90)
    assert (ended["phase"], ended.get("signal")) == ("Killed", "SIGKILL"), ended
    # And the new one gets the slot and runs
    assert phase_in(kube, new, {"Running"}, 90)["phase"] == "Running"
    send(kube, new, "SIGKILL")
    phase_in(kube, new, ENDED, 90)


def test_a_time_out_kills_a_job_ignoring_term_after_kill_after(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # Given a job that ignores TERM, with a 3s timeout and a 2s killAfter
    name = run(kube, synced["Stubborn and slow"])
    # When its time is up, Kubernetes sends TERM (the Job's deadline)
    ended = phase_in(kube, name, ENDED, 120)
    # Then it ends TimedOut within seconds of its killAfter, not Kubernetes' 30s grace
    assert ended["phase"] == "TimedOut", ended
    took = datetime.fromisoformat(ended["completionTime"]) - datetime.fromisoformat(
        ended["startTime"]
    )
    assert took.total_seconds() < 20, ended
    # And its pod, sent TERM at the deadline, is KILLed killAfter (2s) later: the
    # supervisor says so in its log, or the pod is gone (deleted once ended), well before
    # Kubernetes' own grace period (killAfter + 10s) would have killed it
    try:
        eventually(lambda: escalated(kube, ended["podName"]), timeout=8, what="the KILL")
    except TimeoutError:
        pod = kube.kubectl("get", "pod", ended["podName"], "-o", "json", check=False).stdout
        log = kube.kubectl("logs", ended["podName"], check=False).stdout
        raise AssertionError(f"no KILL 8s after the time-out: pod {pod}\nlog {log!r}") from None


def escalated(kube: Kube, pod: str) -> bool:
    """The pod's supervisor logged its escalation to KILL, or the pod has ended and gone."""
    found = kube.kubectl("logs", pod, check=False)
    if found.returncode != 0:
        return "NotFound" in found.stderr or "not found" in found.stderr
    records = protocol.decode_all([found.stdout.encode()])
    return any(
        isinstance(r, protocol.Log) and "of SIGTERM (killAfter)" in r.message for r in records
    )
