"""Hostile jobs stay bounded; the webhook policy knows the cluster's Service ranges.

Issue 11: item 7 (a job flooding ``event`` ends Complete with the overflow counted) and
item 10 (the Service ranges the operator reads from the cluster). Real git repository,
the real operator process, the real cluster.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from overseer.operator import runtime
from overseer.operator import settings as settings_
from tests.e2e.test_executions import ENDED, execute, statuses, wait_for_phase
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

EVENTS = 5000
FLOOD = f"""\
import os, shutil, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(shutil.which("event")))))
from overseer_library import control
path = control.socket_path()
for i in range({EVENTS}):
    control.send(control.EventRequest("tick", {{"i": i, "pad": "x" * 200}}), path=path)
print("sent", {EVENTS})
"""
JOBS = yaml.safe_dump(
    [
        {"name": "Flood", "command": ["python3", "-c", FLOOD]},
        {"name": "Who", "command": ["sh", "-c", 'echo "ran in $HOSTNAME"']},
    ]
)
NAMES = {"Flood", "Who"}


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "archive"


@pytest.fixture
def synced(
    kube: Kube, overseer_crds: None, tmp_path: Path, archive_dir: Path
) -> Iterator[dict[str, dict[str, Any]]]:
    """Given the jobs synced, and the operator archiving into the test's directory."""
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "a flood and a marker")
    workdir = tmp_path / "operator"
    workdir.mkdir()
    env = {"OVERSEER_ARCHIVE_DIR": str(archive_dir)}
    with run_operator(kube.cluster, kube.namespace, workdir, extra_env=env) as operator:
        kube.apply(repository("jobs", upstream.file_url))
        yield wait_for_jobs(kube, NAMES)
        operator.check_alive()
        kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def test_a_job_flooding_events_ends_complete_with_the_overflow_counted(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # When a job sends 5,000 custom events
    name, _ = execute(kube, synced["Flood"])
    # Then it ends Complete, like any job that exits 0
    status = wait_for_phase(kube, name, ENDED, timeout=300)
    assert status["phase"] == "Complete", status

    # And, once its log is read, the status counts the 4,900 events it did not keep, and
    # keeps start, the first 100 events and complete
    # (the count grows while the log is read; it ends at what was not kept)
    def counted() -> dict[str, Any] | None:
        status = wait_for_phase(kube, name, ENDED)
        return status if status.get("eventsDropped") == EVENTS - 100 else None

    try:
        status = eventually(counted, what="the overflow counted")
    except TimeoutError:
        raise AssertionError(wait_for_phase(kube, name, ENDED).get("eventsDropped")) from None
    kinds = statuses(status)
    assert kinds[0] == "start" and kinds[-1] == "complete"
    assert kinds.count("tick") == 100
    assert [e["data"]["i"] for e in status["events"][1:-1]] == list(range(100))


def test_the_service_range_is_read_from_the_cluster(kube: Kube) -> None:
    # Given no OVERSEER_SERVICE_CIDR, when the operator starts, it reads the cluster's
    settings = settings_.Settings(kubeconfig=str(kube.cluster.kubeconfig))
    ranges = asyncio.run(runtime.with_cluster_service_cidrs(settings)).webhooks.url_policy
    cluster_ip = ipaddress.ip_address(
        kube.cluster.run(
            "get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"
        ).stdout
    )
    # Then the kubernetes Service's ClusterIP is in a range webhooks refuse
    assert any(cluster_ip in network for network in ranges.service_cidrs), ranges
