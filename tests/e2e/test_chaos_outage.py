"""An API server outage mid-run: the operator recovers without a restart, nothing doubled.

Issue 13, item 3. Executions run (and one is queued behind another) while
kube-apiserver is stopped for ``OVERSEER_CHAOS_OUTAGE`` seconds (60 by default; shorter
while developing) and started again (``hack/cluster.sh stop-apiserver`` /
``start-apiserver``). The same operator process then brings every execution to its
right terminal phase (the jobs kept running on the node meanwhile, one of them failing
and one ending during the outage), with one Job each, all its output, and every event
delivered; executions created after the outage run too.

It stops the API server every other user of the local cluster shares, so only
``make chaos`` runs it, and the outage is announced in ``/tmp/logs/cluster-events.log``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_chaos_kills import delivery_faults
from tests.e2e.test_execution_output import Archive
from tests.e2e.test_executions import execute
from tests.e2e.test_webhooks import OPERATOR_ENV
from tests.support import chaos, recorder
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = [pytest.mark.cluster, pytest.mark.chaos]

OUTAGE = float(os.environ.get("OVERSEER_CHAOS_OUTAGE") or 60)
"""Seconds the API server stays down."""
# Each writes a line, waits, writes another, and exits with the code it is given.
PHASES = (
    """#!/bin/sh
printf 'begin %s\\n' "$1"
sleep "$2"
printf 'end %s\\n' "$1"
exit "$3"
""",
    0o755,
)
EXPECTED = {
    # job: (phase, stdout)
    "Through": ("Complete", b"begin through\nend through\n"),
    "Ends inside": ("Complete", b"begin inside\nend inside\n"),
    "Fails after": ("Failed", b"begin fails\nend fails\n"),
    "Queued": ("Complete", b"begin queued\nend queued\n"),
    "Later": ("Complete", b"begin later\nend later\n"),
}


def jobs_yaml(hook: str) -> str:
    hooks = {"start": hook, "complete": hook, "fail": hook}
    through = str(int(OUTAGE) + 30)
    inside = str(max(int(OUTAGE) // 2, 5))
    return yaml.safe_dump(
        [
            {
                "name": "Through",
                "command": ["phases", "through", through, "0"],
                "concurrency": {"limit": 1, "policy": "queue", "group": "through"},
                "hooks": hooks,
            },
            {"name": "Ends inside", "command": ["phases", "inside", inside, "0"], "hooks": hooks},
            {"name": "Fails after", "command": ["phases", "fails", through, "3"], "hooks": hooks},
            # Queued behind "Through" (same group, limit 1): admitted after the outage.
            {
                "name": "Queued",
                "command": ["phases", "queued", "1", "0"],
                "concurrency": {"limit": 1, "policy": "queue", "group": "through"},
                "hooks": hooks,
            },
            {"name": "Later", "command": ["phases", "later", "1", "0"], "hooks": hooks},
        ]
    )


@pytest.fixture
def receiver() -> Iterator[recorder.Recorder]:
    with recorder.serve() as served:
        yield served


@pytest.fixture
def archive(tmp_path: Path, kube: Kube) -> Archive:
    return Archive(tmp_path / "archive", kube.namespace)


@pytest.fixture
def synced(
    kube: Kube, overseer_crds: None, tmp_path: Path, archive: Archive, receiver: recorder.Recorder
) -> Iterator[tuple[dict[str, dict[str, Any]], OperatorProcess]]:
    chaos.require_local_cluster(kube.cluster)
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit(
        {"jobs.yml": jobs_yaml(f"{receiver.url}/hook"), "bin/phases": PHASES}, "jobs in phases"
    )
    workdir = tmp_path / "operator"
    workdir.mkdir()
    env = {**OPERATOR_ENV, "OVERSEER_ARCHIVE_DIR": str(archive.root)}
    env["OVERSEER_RESYNC_INTERVAL"] = "15s"
    with run_operator(kube.cluster, kube.namespace, workdir, extra_env=env) as operator:
        try:
            kube.apply(repository("jobs", upstream.file_url))
            yield wait_for_jobs(kube, set(EXPECTED)), operator
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def began(archive: Archive, name: str) -> bool:
    return (archive.read(name, "stdout") or b"").startswith(b"begin")


def outage(seconds: float) -> float:
    """Stop the API server for SECONDS, start it again; return how long it was away."""
    chaos.cluster_event("stopping kube-apiserver (hack/cluster.sh stop-apiserver)", seconds + 30)
    started = time.monotonic()
    chaos.cluster_script("stop-apiserver")
    try:
        time.sleep(seconds)
    finally:
        chaos.cluster_script("start-apiserver")
    return time.monotonic() - started


def test_an_api_server_outage_mid_run_ends_every_execution_right_without_a_restart(
    kube: Kube,
    archive: Archive,
    receiver: recorder.Recorder,
    synced: tuple[dict[str, dict[str, Any]], OperatorProcess],
    request: pytest.FixtureRequest,
) -> None:
    jobs, operator = synced
    names: dict[str, str] = {}
    with chaos.JobWatch(kube.cluster, kube.namespace).running() as watch:
        # Given executions running (one queued behind another), each with its first line out
        for job in ("Through", "Ends inside", "Fails after", "Queued"):
            names[job], _ = execute(kube, jobs[job])
        for job in ("Through", "Ends inside", "Fails after"):
            eventually(
                partial(began, archive, names[job]),
                120,
                f"{job} running",
            )
        # When the API server is away for a while, then back
        away = outage(OUTAGE)
        # And an execution is created afterwards
        names["Later"], _ = chaos.settle(lambda: execute(kube, jobs["Later"]), 60, "the API")
        # Then every execution ends in its right phase, with its output, once, delivered
        items = chaos.settle(lambda: settled_all(kube, set(names.values())), 240)
        time.sleep(2)
    by_name = {i["metadata"]["name"]: i for i in items}
    lost = {"wrong phase": 0, "output lost": 0, "duplicate Jobs": 0, "events undelivered": 0}
    lost["webhook-ids unstable"] = 0
    for job, name in names.items():
        phase, stdout = EXPECTED[job]
        item = by_name[name]
        lost["wrong phase"] += item["status"]["phase"] != phase
        lost["output lost"] += archive.read(name, "stdout") != stdout
        lost["duplicate Jobs"] += len(watch.uids.get(name, ())) != 1
        undelivered, unstable = delivery_faults(item, receiver)
        lost["events undelivered"] += undelivered
        lost["webhook-ids unstable"] += unstable
    lost["operator restarts"] = int(operator.process.poll() is not None)
    count = f"1 outage ({away:.0f}s), {len(names)} executions"
    chaos.record(request.config, "API server outage", count, lost)
    assert not any(lost.values()), (lost, {n: by_name[n]["status"] for n in names.values()})
    operator.check_alive()


def settled_all(kube: Kube, names: set[str]) -> list[dict[str, Any]] | None:
    """The executions NAMES once each has settled (ended, archived, delivered)."""
    items = [i for i in chaos.executions(kube) if i["metadata"]["name"] in names]
    if len(items) < len(names) or not all(chaos.is_settled(i) for i in items):
        return None
    return items
