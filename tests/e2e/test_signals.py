"""Signals requested through an OverseerExecution reach the job's process group.

Real git repository, the real operator process, the real cluster: each request is
appended to ``spec.signals`` with a JSON patch, as the API does (or a person with
``kubectl patch``), and the job's own traps, its archived stdout and the execution's
status and Events show what became of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_execution_output import Archive
from tests.e2e.test_executions import listed, statuses, stdout_of, wait_for_phase
from tests.support.cluster import REPO, Cluster, Kube
from tests.support.gitserver import Upstream
from tests.support.operator import run_operator
from tests.support.overseer import eventually, execution, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

# Traps print what they got and the job carries on; `ready` says the traps are set.
TRAPS = """\
for sig in TERM HUP USR1; do trap "echo got $sig" "$sig"; done
echo ready
while :; do sleep 1; done
"""
JOBS = yaml.safe_dump(
    [
        # Long enough that the TERM the test sends never escalates to KILL by itself.
        {"name": "Traps", "command": ["sh", "-c", TRAPS], "killAfter": "10m"},
        {"name": "Quick", "command": "true"},
        {"name": "Retried", "command": ["sleep", "300"], "retries": 2},
    ]
)
NAMES = {"Traps", "Quick", "Retried"}


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit({"jobs.yml": JOBS}, "a job that traps signals, and a quick one")
    return repo


def apply_crds(cluster: Cluster) -> None:
    cluster.run(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(REPO / "manifests" / "crds.yaml"),
    )
    cluster.run(
        "wait",
        "--for=condition=Established",
        "crd/overseerexecutions.overseer.dev",
        "--timeout=60s",
    )


def crds_know_signal_deliveries(cluster: Cluster) -> bool:
    path = (
        "jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.status"
        ".properties.signalDeliveries.type}"
    )
    out = cluster.run("get", "crd", "overseerexecutions.overseer.dev", "-o", path).stdout
    return out.strip() == "array"


@pytest.fixture
def signal_crds(overseer_crds: None, kube_cluster: Cluster) -> None:
    """This branch's CRDs, again before each test.

    Other test sessions on a shared cluster apply their own copy of the CRDs (the schema
    is one atomic field: the last applier wins); a copy without status.signalDeliveries
    would prune the records from every status write.
    """
    if not crds_know_signal_deliveries(kube_cluster):
        apply_crds(kube_cluster)


@pytest.fixture
def archive(tmp_path: Path, kube: Kube) -> Archive:
    return Archive(tmp_path / "archive", kube.namespace)


@pytest.fixture
def synced(
    kube: Kube, signal_crds: None, tmp_path: Path, upstream: Upstream, archive: Archive
) -> Iterator[dict[str, dict[str, Any]]]:
    """Given the operator archiving into the test's directory, and the jobs synced."""
    workdir = tmp_path / "operator"
    workdir.mkdir()
    env = {"OVERSEER_ARCHIVE_DIR": str(archive.root)}
    with run_operator(kube.cluster, kube.namespace, workdir, extra_env=env) as operator:
        kube.apply(repository("jobs", upstream.file_url))
        yield wait_for_jobs(kube, NAMES)
        operator.check_alive()
        kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def run(kube: Kube, job: dict[str, Any], *signals: str) -> str:
    """Create an execution of JOB (with SIGNALS requested already); return its name."""
    manifest = execution(job)
    # As the API creates them: an empty list, so that appending always works.
    manifest["spec"]["signals"] = [request(signal) for signal in signals]
    kube.create(manifest)
    return str(manifest["metadata"]["name"])


def request(signal: str) -> dict[str, str]:
    return {"signal": signal, "requestedAt": datetime.now(UTC).isoformat()}


def send(kube: Kube, name: str, signal: str, *, settled: bool = False) -> None:
    """Append a request to spec.signals, as the API will: a JSON patch; to a settled
    execution, one that also takes its label off (docs/executions.rst, "Signals")."""
    patch = [{"op": "add", "path": "/spec/signals/-", "value": request(signal)}]
    if settled:
        patch.append({"op": "remove", "path": "/metadata/labels/overseer.dev~1settled"})
    kube.kubectl("patch", "overseerexecution", name, "--type=json", "-p", json.dumps(patch))


def deliveries(kube: Kube, name: str, count: int) -> list[dict[str, Any]]:
    """status.signalDeliveries once it holds COUNT records."""
    nudged = time.monotonic()

    def check() -> list[dict[str, Any]] | None:
        nonlocal nudged
        status = kube.get("overseerexecution", name).get("status") or {}
        found: list[dict[str, Any]] = status.get("signalDeliveries") or []
        if len(found) >= count:
            return found
        if not crds_know_signal_deliveries(kube.cluster):
            # Another session replaced the CRDs: records written meanwhile were pruned.
            apply_crds(kube.cluster)
        if time.monotonic() - nudged > 10 and status.get("podName"):
            # Records still missing (pruned, see above): touch the pod, so that the
            # observation its event causes writes them again (the operator remembers
            # what it handled, and sends nothing twice).
            nudge = f"overseer.dev/test-nudge={time.time()}"
            kube.kubectl("annotate", "--overwrite", "pod", status["podName"], nudge)
            nudged = time.monotonic()
        return None

    result: list[dict[str, Any]] = eventually(check, timeout=90, what=f"{count} signal records")
    return result


def events(kube: Kube, name: str, *reasons: str) -> list[dict[str, Any]]:
    """The execution's Kubernetes Events with those reasons, oldest first."""
    out = kube.kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    found = [e for e in json.loads(out)["items"] if e["reason"] in reasons]
    return sorted(found, key=lambda e: e.get("eventTime") or e.get("firstTimestamp") or "")


def test_term_hup_usr1_reach_the_job_traps_and_kill_ends_it(
    kube: Kube, archive: Archive, synced: dict[str, dict[str, Any]]
) -> None:
    # Given a running job that traps TERM, HUP and USR1
    name = run(kube, synced["Traps"])
    pod = wait_for_phase(kube, name, {"Running"}, timeout=120)["podName"]

    def printed(expected: bytes) -> bool:
        # The pod's log, decoded: the archive's copy of a quiet job may lag a little.
        return stdout_of(kube, pod) == expected

    expected = b"ready\n"
    eventually(lambda: printed(b"ready\n"), timeout=60, what="the job's traps to be set")
    # When TERM, HUP and USR1 are requested, one after the other
    for signal in ("SIGTERM", "SIGHUP", "SIGUSR1"):
        send(kube, name, signal)
        expected += f"got {signal[3:]}\n".encode()
        # Then each reaches the job: its trap prints it, and the job keeps running
        eventually(partial(printed, expected), timeout=90, what=f"the job's trap for {signal}")
    assert wait_for_phase(kube, name, {"Running"}, timeout=5)["phase"] == "Running"
    # And each is recorded as sent, in order, with an Event each
    records = deliveries(kube, name, 3)
    assert [(r["index"], r["signal"], r["result"], r["sentSignal"]) for r in records] == [
        (0, "SIGTERM", "Sent", "SIGTERM"),
        (1, "SIGHUP", "Sent", "SIGHUP"),
        (2, "SIGUSR1", "Sent", "SIGUSR1"),
    ]
    # When a signal Overseer does not know is requested (the CRD's pattern admits it)
    send(kube, name, "SIGFOO")
    # Then it is refused and recorded, with a Warning Event saying what is accepted
    refused = deliveries(kube, name, 4)[3]
    assert (refused["index"], refused["signal"], refused["result"]) == (3, "SIGFOO", "Refused")
    assert "unknown signal 'SIGFOO'" in refused["message"]
    [warning] = eventually(lambda: events(kube, name, "SignalRefused"), what="SignalRefused")
    assert warning["type"] == "Warning" and "TERM" in warning["message"]
    # When KILL is requested
    send(kube, name, "SIGKILL")
    # Then the job ends, Killed by SIGKILL, with its start and fail events in order
    status = wait_for_phase(kube, name, {"Complete", "Failed", "TimedOut", "Killed"}, timeout=90)
    assert (status["phase"], status["reason"], status["signal"]) == ("Killed", "Killed", "SIGKILL")
    assert status["exitCode"] == 137
    assert statuses(status) == ["start", "fail"]
    assert status["events"][-1]["data"] == {
        "exitCode": 137,
        "signal": "SIGKILL",
        "reason": "Killed",
    }
    assert "SIGKILL" in status["message"]
    # And every request is recorded once; SIGFOO was never retried
    records = deliveries(kube, name, 5)
    assert [(r["signal"], r["result"]) for r in records] == [
        ("SIGTERM", "Sent"),
        ("SIGHUP", "Sent"),
        ("SIGUSR1", "Sent"),
        ("SIGFOO", "Refused"),
        ("SIGKILL", "Sent"),
    ]
    # And an Event was posted for each signal sent, in order
    sent = eventually(
        lambda: len(found := events(kube, name, "SignalSent")) == 4 and found,
        what="four SignalSent Events",
    )
    assert [e["message"].split()[1] for e in sent] == ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGKILL"]
    assert all(e["type"] == "Normal" for e in sent)
    # And the archive kept what the job printed
    archive.wait_complete(name)
    assert archive.read(name, "stdout") == expected


def test_a_kill_requested_before_the_job_runs_waits_for_it_then_ends_it(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # When an execution is created with KILL requested already (its pod is not there yet)
    name = run(kube, synced["Traps"], "SIGKILL")
    # Then the KILL is sent once the job runs, and the execution ends Killed by it
    status = wait_for_phase(kube, name, {"Complete", "Failed", "TimedOut", "Killed"}, timeout=150)
    assert (status["phase"], status["signal"]) == ("Killed", "SIGKILL"), status
    records = deliveries(kube, name, 1)
    assert len(records) == 1, records
    [record] = records
    assert (record["result"], record["sentSignal"]) == ("Sent", "SIGKILL")


def test_a_signal_to_a_finished_execution_is_a_recorded_no_op(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # Given an execution that completed
    name = run(kube, synced["Quick"])
    done = wait_for_phase(kube, name, {"Complete", "Failed", "TimedOut", "Killed"})
    assert done["phase"] == "Complete", done
    # (it settles, and leaves the operator's watch)
    eventually(lambda: settled_label(kube, name) == "true", timeout=60, what="the settled label")
    # When TERM is requested, the label taken off in the same patch
    send(kube, name, "SIGTERM", settled=True)
    # Then it is recorded as not delivered, with a Warning Event, and nothing else changes
    records = deliveries(kube, name, 1)
    assert len(records) == 1, records
    [record] = records
    assert (record["signal"], record["result"]) == ("SIGTERM", "NotDelivered")
    assert "already ended" in record["message"]
    [warning] = eventually(
        lambda: events(kube, name, "SignalNotDelivered"), what="a SignalNotDelivered Event"
    )
    assert warning["type"] == "Warning"
    status = wait_for_phase(kube, name, {"Complete"}, timeout=5)
    assert (status["exitCode"], statuses(status)) == (0, ["start", "complete"])
    assert status.get("signal") is None
    # And it settles again
    eventually(lambda: settled_label(kube, name) == "true", timeout=60, what="the label again")


def settled_label(kube: Kube, name: str) -> str | None:
    labels = kube.get("overseerexecution", name)["metadata"].get("labels") or {}
    value = labels.get("overseer.dev/settled")
    return None if value is None else str(value)


def test_an_untrapped_term_ends_it_killed_and_retries_left_are_not_used(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # Given a running execution of a job with two retries that does not trap TERM
    name = run(kube, synced["Retried"])
    wait_for_phase(kube, name, {"Running"}, timeout=120)
    # When TERM is requested
    send(kube, name, "SIGTERM")
    # Then it ends Killed by SIGTERM (exit status 143)
    status = wait_for_phase(kube, name, {"Complete", "Failed", "TimedOut", "Killed"}, timeout=90)
    assert (status["phase"], status["signal"], status["exitCode"]) == ("Killed", "SIGTERM", 143)
    assert status["events"][-1]["data"] == {
        "exitCode": 143,
        "signal": "SIGTERM",
        "reason": "Killed",
    }
    # And its Job is deleted rather than left to start another pod
    eventually(lambda: listed(kube, "jobs", name) == [], timeout=60, what="the Job deleted")
    assert wait_for_phase(kube, name, {"Killed"}, timeout=5)["signal"] == "SIGTERM"


def test_an_operator_restart_sends_no_request_twice(
    kube: Kube, signal_crds: None, tmp_path: Path, upstream: Upstream
) -> None:
    kube.apply(repository("jobs", upstream.file_url))
    first = tmp_path / "first"
    first.mkdir()
    with run_operator(kube.cluster, kube.namespace, first) as operator:
        # Given a running job that has been sent TERM
        name = run(kube, wait_for_jobs(kube, NAMES)["Traps"])
        pod = wait_for_phase(kube, name, {"Running"}, timeout=120)["podName"]
        eventually(lambda: stdout_of(kube, pod) == b"ready\n", timeout=60, what="the traps set")
        send(kube, name, "SIGTERM")
        deliveries(kube, name, 1)
        operator.check_alive()
    # When the operator restarts, and HUP is requested while it is down
    send(kube, name, "SIGHUP")
    second = tmp_path / "second"
    second.mkdir()
    with run_operator(kube.cluster, kube.namespace, second) as operator:
        try:
            # Then HUP is sent, and TERM was not sent again
            records = deliveries(kube, name, 2)
            assert [(r["signal"], r["result"]) for r in records] == [
                ("SIGTERM", "Sent"),
                ("SIGHUP", "Sent"),
            ]
            eventually(
                lambda: stdout_of(kube, pod) == b"ready\ngot TERM\ngot HUP\n",
                timeout=60,
                what="the HUP trap",
            )
            send(kube, name, "SIGKILL")
            status = wait_for_phase(kube, name, {"Killed", "Failed", "Complete"}, timeout=90)
            assert status["phase"] == "Killed", status
            assert stdout_of(kube, pod) == b"ready\ngot TERM\ngot HUP\n"
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
