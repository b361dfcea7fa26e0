"""An execution whose parameters pass what an object's annotations may hold runs, takes
signals and ends like any other.

kopf records each object it handled in an annotation (its "diff base"); Kubernetes caps
an object's annotations at 256 KiB together, and the whole spec of an execution holds
every parameter value, each up to 128 KiB. Real git repository, real operator, real
cluster: three values of 100,000 bytes (each under the kernel's limit, 300,000 together).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_executions import stdout_of, wait_for_phase
from tests.e2e.test_signals import deliveries, send
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import eventually, execution, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

DIFF_BASE = "kopf.overseer.dev/last-handled-configuration"
VALUES = {name: name[0] * 100_000 for name in ("alpha", "bravo", "charlie")}
# USR1 ends the job (exit 0) through its trap; `ready` says the trap is set, and how
# much of each value the job received.
SCRIPT = """\
trap 'echo got USR1; exit 0' USR1
echo ready ${#OVERSEER_PARAM_ALPHA} ${#OVERSEER_PARAM_BRAVO} ${#OVERSEER_PARAM_CHARLIE}
while :; do sleep 1; done
"""
READY = b"ready 100000 100000 100000\n"
JOBS = yaml.safe_dump(
    [
        {
            "name": "Large",
            "command": ["sh", "-c", SCRIPT],
            "parameters": {name: {"required": True} for name in VALUES},
        }
    ]
)


@pytest.fixture
def large_job(kube: Kube, operator: OperatorProcess, tmp_path: Path) -> dict[str, Any]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "a job that takes large parameters and USR1")
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, {"Large"})["Large"]


def diff_base(kube: Kube, name: str) -> Any:
    """kopf's diff base of execution NAME, decoded; None when there is none."""
    annotations = kube.get("overseerexecution", name)["metadata"].get("annotations") or {}
    return json.loads(annotations[DIFF_BASE]) if DIFF_BASE in annotations else None


def refusals(kube: Kube, operator: OperatorProcess, name: str) -> list[str]:
    """What says a write of the operator to execution NAME was refused: lines of its log,
    and the Events kopf posted for it (throttling after an error)."""
    lines = [
        line
        for line in operator.log().splitlines()
        if "UnprocessableEntity" in line or "Throttling for" in line
    ]
    out = kube.kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    events = [e["message"] for e in json.loads(out)["items"] if "Throttling" in e["message"]]
    return [line[:300] for line in lines + events]


def test_an_execution_with_parameters_over_the_annotation_limit_runs_takes_a_signal_and_ends(
    kube: Kube, operator: OperatorProcess, large_job: dict[str, Any]
) -> None:
    # Given an execution of 300,000 bytes of parameters, created as the API does
    manifest = execution(large_job, parameters=VALUES)
    manifest["spec"]["signals"] = []
    kube.create(manifest)
    name = str(manifest["metadata"]["name"])
    # When it runs, with every byte of its values
    pod = wait_for_phase(kube, name, {"Running"}, timeout=120)["podName"]
    eventually(lambda: stdout_of(kube, pod) == READY, timeout=60, what="the job's trap set")
    # And an older operator's diff base is put back (a whole essence; a small one, or
    # it would not have been written): kopf replaces it with the signals alone
    older = {"spec": {"job": "Large", "signals": []}, "metadata": {"labels": {"a": "b"}}}
    kube.kubectl(
        "annotate", "--overwrite", "overseerexecution", name, f"{DIFF_BASE}={json.dumps(older)}"
    )
    eventually(
        lambda: diff_base(kube, name) == {"spec": {"signals": []}},
        timeout=30,
        what="the diff base rewritten",
    )
    # And USR1 is requested through spec.signals
    send(kube, name, "SIGUSR1")
    # Then it reaches the job, whose trap ends it: Complete, with its output
    status = wait_for_phase(kube, name, {"Complete", "Failed", "TimedOut", "Killed"}, timeout=60)
    assert (status["phase"], status.get("exitCode")) == ("Complete", 0), status
    assert stdout_of(kube, pod) == READY + b"got USR1\n"
    [record] = deliveries(kube, name, 1)
    assert (record["signal"], record["result"]) == ("SIGUSR1", "Sent")
    # And kopf recorded it as handled, in an annotation that holds no parameter value
    signals = kube.get("overseerexecution", name)["spec"]["signals"]
    assert diff_base(kube, name) == {"spec": {"signals": signals}}, refusals(kube, operator, name)
    # And no write of the operator to it was refused
    assert refusals(kube, operator, name) == []
