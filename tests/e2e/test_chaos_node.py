"""Faults of the node under a running execution: an eviction, a container runtime restart.

Issue 13, item 6. What each ends in is documented in ``docs/executions.rst`` ("Faults
of the node"):

- an eviction (the eviction API, as ``kubectl drain`` uses) stops the job: the
  execution is Failed with reason ``Disrupted`` (``Evicted`` when the kubelet itself
  evicts for node pressure), and the output written up to the eviction is archived,
  complete, byte for byte;
- a restart of containerd leaves the running containers alone (their shims hold them)
  and the kubelet reconnects: the execution goes on and is Complete, with all its
  output, the part written while containerd was away included.

The eviction runs in ``make test``; the containerd restart stops the shared node's
runtime for a few seconds, so only ``make chaos`` runs it (and says so beforehand in
``/tmp/logs/cluster-events.log``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_execution_output import Archive
from tests.e2e.test_executions import execute, status_of, wait_for_phase
from tests.support import chaos
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

BEFORE = b"written before the fault \x00\xff\n"
AFTER = b"written after it\n"
# Writes BEFORE, then waits for the fault; with an argument, goes on to write AFTER.
TWO_PARTS = (
    """#!/bin/sh
printf 'written before the fault \\000\\377\\n'
sleep "$1"
printf 'written after it\\n'
""",
    0o755,
)
JOBS = yaml.safe_dump(
    [
        {"name": "Long", "command": ["two-parts", "300"]},
        {"name": "Through", "command": ["two-parts", "25"]},
    ]
)


@pytest.fixture
def archive(tmp_path: Path, kube: Kube) -> Archive:
    return Archive(tmp_path / "archive", kube.namespace)


@pytest.fixture
def synced(
    kube: Kube, overseer_crds: None, tmp_path: Path, archive: Archive
) -> Iterator[tuple[dict[str, dict[str, Any]], OperatorProcess]]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS, "bin/two-parts": TWO_PARTS}, "jobs that write in two parts")
    workdir = tmp_path / "operator"
    workdir.mkdir()
    env = {"OVERSEER_ARCHIVE_DIR": str(archive.root)}
    with run_operator(kube.cluster, kube.namespace, workdir, extra_env=env) as operator:
        try:
            kube.apply(repository("jobs", upstream.file_url))
            yield wait_for_jobs(kube, {"Long", "Through"}), operator
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def running_with_output(kube: Kube, archive: Archive, job: dict[str, Any]) -> tuple[str, str]:
    """Start an execution of JOB; return its name and pod once its first part is archived."""
    name, _ = execute(kube, job)
    eventually(lambda: archive.read(name, "stdout") == BEFORE, 120, f"{name}'s first part")
    pod = str(wait_for_phase(kube, name, {"Running"})["podName"])
    return name, pod


def evict(kube: Kube, pod: str) -> None:
    """What kubectl drain does to each pod: an Eviction through the eviction API."""
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": kube.namespace},
    }
    path = f"/api/v1/namespaces/{kube.namespace}/pods/{pod}/eviction"
    kube.kubectl("create", "--raw", path, "-f", "-", input=json.dumps(eviction))


def test_an_evicted_pod_fails_the_execution_disrupted_with_its_output_up_to_then(
    kube: Kube,
    archive: Archive,
    synced: tuple[dict[str, dict[str, Any]], OperatorProcess],
    request: pytest.FixtureRequest,
) -> None:
    jobs, operator = synced
    # Given an execution that has written its first part and waits
    name, pod = running_with_output(kube, archive, jobs["Long"])
    # When its pod is evicted (as kubectl drain does)
    evict(kube, pod)
    # Then the execution is Failed, Disrupted, and no other attempt is made
    status = wait_for_phase(kube, name, {"Complete", "Failed", "TimedOut", "Killed"})
    state = archive.wait_complete(name)
    lost = {
        "wrong phase": (status["phase"], status["reason"]) != ("Failed", "Disrupted"),
        "output lost": archive.read(name, "stdout") != BEFORE,
        "other attempts": len(json.loads(kube.kubectl("get", "pods", "-o", "json").stdout)["items"])
        > 1,
    }
    chaos.record(request.config, "pod eviction", "1", {k: int(v) for k, v in lost.items()})
    assert (status["phase"], status["reason"]) == ("Failed", "Disrupted"), status
    assert "Eviction" in status["message"], status
    # And its output up to the eviction is archived, byte for byte, and read to its end
    assert archive.read(name, "stdout") == BEFORE
    assert state["pod"] == pod
    assert status_of(kube, name)["archive"]["state"] == "Complete"
    assert not lost["other attempts"]
    operator.check_alive()


@pytest.mark.chaos
def test_a_container_runtime_restart_mid_run_loses_no_output(
    kube: Kube,
    archive: Archive,
    synced: tuple[dict[str, dict[str, Any]], OperatorProcess],
    request: pytest.FixtureRequest,
) -> None:
    chaos.require_local_cluster(kube.cluster)
    jobs, operator = synced
    # Given an execution that has written its first part and waits 25 s
    name, pod = running_with_output(kube, archive, jobs["Through"])
    # When containerd restarts meanwhile
    chaos.cluster_event("restarting containerd (hack/cluster.sh restart-containerd)", 10)
    started = time.monotonic()
    chaos.cluster_script("restart-containerd")
    took = time.monotonic() - started
    # Then the job goes on and completes, in the same pod, with all its output
    status = wait_for_phase(kube, name, {"Complete", "Failed", "TimedOut", "Killed"}, 180)
    archive.wait_complete(name)
    lost = {
        "wrong phase": status["phase"] != "Complete",
        "output lost": archive.read(name, "stdout") != BEFORE + AFTER,
        "pod replaced": status.get("podName") != pod,
    }
    count = f"1 restart ({took:.0f}s)"
    chaos.record(request.config, "containerd restart", count, {k: int(v) for k, v in lost.items()})
    assert status["phase"] == "Complete", status
    assert archive.read(name, "stdout") == BEFORE + AFTER
    assert status["podName"] == pod
    operator.check_alive()
