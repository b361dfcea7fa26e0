"""An OverseerExecution becomes a batch/v1 Job, and its phase follows the pod.

Real git repository, the real operator process, the real cluster: each test creates an
execution with kubectl, as a user (or the API) would, and reads what Overseer made of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from overseer_library import protocol
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, execution, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

EXECUTION_LABEL = "overseer.dev/execution"
ENDED = {"Complete", "Failed", "TimedOut", "Killed"}
"""The terminal phases: what a test waits for before it looks at the outcome."""

JOBS = """\
- name: Greet
  command: [greet, world]
- name: Exit three
  command: exit 3
- name: Missing image
  image: localhost/overseer/nope:dev
  command: "true"
- name: Too slow
  timeout: 3s
  command: [sleep, "300"]
- name: Sleepy
  command: [sleep, "300"]
- name: Nap
  command: [sleep, "6"]
- name: Hungry
  resources: {limits: {memory: 48Mi}}
  command: [python3, -c, "b = bytearray(512 * 1024 * 1024); print(len(b))"]
"""
ALL_JOBS = {"Greet", "Exit three", "Missing image", "Too slow", "Sleepy", "Nap", "Hungry"}
# On PATH only if the repository's bin/ is mounted and put first; checks who runs it.
GREET = (
    '#!/bin/sh\nset -e\n[ "$(id -u)" = 10001 ] || { echo "uid $(id -u)" >&2; exit 9; }\n'
    'echo "hello $1"\n',
    0o755,
)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit({"jobs.yml": JOBS, "bin/greet": GREET}, "jobs and a script")
    return repo


@pytest.fixture
def synced(kube: Kube, upstream: Upstream) -> Iterator[dict[str, dict[str, Any]]]:
    """Given a repository synced from git: its OverseerJobs by display name."""
    kube.apply(repository("jobs", upstream.file_url))
    yield wait_for_jobs(kube, ALL_JOBS)


def execute(
    kube: Kube,
    job: dict[str, Any],
    parameters: dict[str, str] | None = None,
    *,
    commit: str | None = None,
) -> tuple[str, str]:
    """Create an OverseerExecution of JOB with kubectl; return its name and execution id."""
    manifest = execution(job, parameters=parameters, commit=commit)
    kube.create(manifest)
    return manifest["metadata"]["name"], manifest["spec"]["executionId"]


def status_of(kube: Kube, name: str) -> dict[str, Any]:
    status: dict[str, Any] = kube.get("overseerexecution", name).get("status") or {}
    return status


def wait_for_phase(kube: Kube, name: str, phases: set[str], timeout: float = 120) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = status_of(kube, name)
        return status if status.get("phase") in phases else None

    try:
        result: dict[str, Any] = eventually(check, timeout, f"{name} to be {sorted(phases)}")
    except TimeoutError:
        raise AssertionError(f"{name}: {status_of(kube, name)}") from None
    return result


def listed(kube: Kube, kind: str, name: str) -> list[dict[str, Any]]:
    """Objects of KIND labelled as belonging to execution NAME."""
    out = kube.kubectl("get", kind, "-l", f"{EXECUTION_LABEL}={name}", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def statuses(status: dict[str, Any]) -> list[str]:
    return [event["status"] for event in status.get("events", [])]


def stdout_of(kube: Kube, pod: str) -> bytes:
    """What the job wrote to stdout, decoded from the supervisor's framed log."""
    log = kube.logs(pod).encode()
    return b"".join(
        r.data
        for r in protocol.decode_all([log])
        if isinstance(r, protocol.Output) and r.stream == "stdout"
    )


def test_a_job_runs_its_repository_script_in_a_restricted_pod_and_completes(
    kube: Kube, operator: OperatorProcess, synced: dict[str, dict[str, Any]]
) -> None:
    # Given a namespace that enforces the restricted Pod Security Standard
    kube.cluster.run(
        "label", "namespace", kube.namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    # When an execution of a job that runs the repository's bin/greet is created
    name, execution_id = execute(kube, synced["Greet"])
    # Then it completes, with a start and a complete event, and exit code 0
    status = wait_for_phase(kube, name, ENDED)
    assert status["phase"] == "Complete", status
    assert statuses(status) == ["start", "complete"]
    assert status["exitCode"] == 0
    assert status["reason"] == "Completed"
    assert status["jobName"] == name
    started, ended = (datetime.fromisoformat(status[k]) for k in ("startTime", "completionTime"))
    assert started <= ended
    # And its Job and pod exist, labelled, the pod under the restricted security context
    [job] = listed(kube, "jobs", name)
    assert job["metadata"]["ownerReferences"][0]["name"] == name
    [pod] = listed(kube, "pods", name)
    assert status["podName"] == pod["metadata"]["name"]
    assert status["events"][0]["data"] == {"pod": pod["metadata"]["name"]}
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["spec"]["containers"][0]["securityContext"]
    assert container == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    # And the script ran from the repository's bin/ (found on PATH), as uid 10001
    assert stdout_of(kube, pod["metadata"]["name"]) == b"hello world\n"
    # And the OverseerJob names its latest execution and how it went
    job_status = eventually(
        lambda: (
            (s := kube.get("overseerjob", synced["Greet"]["metadata"]["name"]).get("status"))
            and s.get("lastStatus") == "Complete"
            and s
        ),
        what="the job's lastStatus",
    )
    assert job_status["lastExecution"] == execution_id
    # And kubectl's columns show it
    assert "Complete" in kube.kubectl("get", "osx", name).stdout


def test_a_job_exiting_3_fails_with_its_exit_code(
    kube: Kube, operator: OperatorProcess, synced: dict[str, dict[str, Any]]
) -> None:
    # When an execution of a job whose command exits 3 is created
    name, _ = execute(kube, synced["Exit three"])
    # Then it fails with exit code 3, a start and a fail event
    status = wait_for_phase(kube, name, ENDED)
    assert (status["phase"], status["reason"], status["exitCode"]) == ("Failed", "ExitCode", 3)
    assert statuses(status) == ["start", "fail"]
    assert status["events"][-1]["data"] == {"exitCode": 3, "reason": "ExitCode"}
    # And a Warning Event says so on the execution
    events = eventually(
        lambda: [
            e
            for e in json.loads(
                kube.kubectl(
                    "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
                ).stdout
            )["items"]
            if e["type"] == "Warning"
        ],
        what="a Warning Event",
    )
    assert events[0]["reason"] == "ExitCode"


def test_an_image_that_does_not_exist_fails_the_execution(
    kube: Kube, operator: OperatorProcess, synced: dict[str, dict[str, Any]]
) -> None:
    # When an execution of a job whose image cannot be pulled is created
    name, _ = execute(kube, synced["Missing image"])
    # Then it stays Pending while the pull is retried
    pending = wait_for_phase(kube, name, {"Pending"}, timeout=60)
    assert not pending.get("events")
    # And fails once the grace period (60s) is over, with a reason, and no start event
    status = wait_for_phase(kube, name, ENDED, timeout=150)
    assert (status["phase"], status["reason"]) == ("Failed", "ImagePullFailed"), status
    assert "nope" in status["message"]
    assert statuses(status) == ["fail"]
    # And its Job, which would never run, is deleted
    eventually(lambda: listed(kube, "jobs", name) == [], what="the Job to be deleted")


def test_a_job_over_its_timeout_times_out(
    kube: Kube, operator: OperatorProcess, synced: dict[str, dict[str, Any]]
) -> None:
    # When an execution of a 3s-timeout job that sleeps 300s is created
    name, _ = execute(kube, synced["Too slow"])
    # Then it times out, with a start and a time-out event
    status = wait_for_phase(kube, name, ENDED)
    assert (status["phase"], status["reason"]) == ("TimedOut", "DeadlineExceeded"), status
    assert statuses(status) == ["start", "time-out"]
    [job] = listed(kube, "jobs", name)
    assert job["spec"]["activeDeadlineSeconds"] == 3


def test_a_job_over_its_memory_limit_fails_as_oom_killed(
    kube: Kube, operator: OperatorProcess, synced: dict[str, dict[str, Any]]
) -> None:
    name, _ = execute(kube, synced["Hungry"])
    status = wait_for_phase(kube, name, ENDED)
    assert (status["phase"], status["reason"]) == ("Failed", "OOMKilled"), status
    assert "memory" in status["message"]
    assert statuses(status) == ["start", "fail"]
    assert status["events"][-1]["data"]["reason"] == "OOMKilled"


def test_a_pod_deleted_by_hand_fails_the_execution(
    kube: Kube, operator: OperatorProcess, synced: dict[str, dict[str, Any]]
) -> None:
    # Given a running execution
    name, _ = execute(kube, synced["Sleepy"])
    running = wait_for_phase(kube, name, {"Running", "Complete", "Failed", "TimedOut"})
    assert running["phase"] == "Running", running
    assert statuses(running) == ["start"]
    # When its pod is deleted by hand
    kube.kubectl("delete", "pod", running["podName"], "--wait=false")
    # Then the execution fails: PodDeleted
    status = wait_for_phase(kube, name, ENDED)
    assert (status["phase"], status["reason"]) == ("Failed", "PodDeleted"), status
    assert statuses(status) == ["start", "fail"]
    # And no other pod runs it again
    assert len(listed(kube, "jobs", name)) == 1
    assert [p["metadata"]["name"] for p in listed(kube, "pods", name)] in ([], [running["podName"]])


def test_invalid_parameters_fail_at_once_without_a_job(
    kube: Kube, operator: OperatorProcess, synced: dict[str, dict[str, Any]]
) -> None:
    # When an execution is given a parameter its job does not accept
    manifest = execution(synced["Greet"], parameters={"colour": "blue"}, trigger="api")
    name = manifest["metadata"]["name"]
    kube.create(manifest)
    # Then it fails at once, naming the parameter, with a fail event and no Job
    status = wait_for_phase(kube, name, ENDED, timeout=30)
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidParameters"), status
    assert "colour" in status["message"]
    assert statuses(status) == ["fail"]
    assert listed(kube, "jobs", name) == []
    assert listed(kube, "secrets", name) == []


def test_an_operator_restart_mid_execution_creates_no_second_job(
    kube: Kube, overseer_crds: None, tmp_path: Path, upstream: Upstream
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    with run_operator(kube.cluster, kube.namespace, first) as operator:
        # Given a running execution of a job that sleeps 6s
        kube.apply(repository("jobs", upstream.file_url))
        job = wait_for_jobs(kube, ALL_JOBS)["Nap"]
        name, _ = execute(kube, job)
        running = wait_for_phase(kube, name, {"Running", "Complete", "Failed", "TimedOut"})
        assert running["phase"] == "Running", running
        [before] = listed(kube, "jobs", name)
        operator.check_alive()
    # When the operator stops, and the job ends while it is away
    kube.wait_for_pod_end(running["podName"], timeout=60)
    assert status_of(kube, name)["phase"] == "Running"
    second = tmp_path / "second"
    second.mkdir()
    with run_operator(kube.cluster, kube.namespace, second) as operator:
        try:
            # Then the restarted operator reads the outcome from the cluster
            status = wait_for_phase(kube, name, ENDED, timeout=60)
            assert status["phase"] == "Complete", status
            # And there is still one Job, the same, and one of each event
            jobs = listed(kube, "jobs", name)
            assert [j["metadata"]["uid"] for j in jobs] == [before["metadata"]["uid"]]
            assert len(listed(kube, "pods", name)) == 1
            assert statuses(status) == ["start", "complete"]
            # The first start is kept. It may have been read from the pod's status, in
            # whole seconds, before the supervisor's start frame: the restarted operator
            # reads that frame and refines it to the microsecond, never more than the
            # supervisor's few moments after the container started; a start taken anew
            # would come after the 6 s nap and the restart.
            started, kept = (datetime.fromisoformat(s["startTime"]) for s in (running, status))
            assert timedelta(0) <= kept - started < timedelta(seconds=3), (started, kept)
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def test_a_running_execution_keeps_the_bin_bundle_of_its_commit(
    kube: Kube, operator: OperatorProcess, upstream: Upstream, synced: dict[str, dict[str, Any]]
) -> None:
    # Given an execution running at the first commit
    first = upstream.head
    name, _ = execute(kube, synced["Sleepy"])
    wait_for_phase(kube, name, {"Running"})
    # When a new commit changes bin/ and the repository syncs it
    upstream.commit({"bin/greet": ("#!/bin/sh\necho hi again\n", 0o755)}, "new greet")
    kube.kubectl(
        "annotate",
        "--overwrite",
        "overseerrepository",
        "jobs",
        f"overseer.dev/requested-sync={datetime.now(UTC).timestamp()}",
    )

    def bundle_commits() -> set[str]:
        out = kube.kubectl(
            "get", "configmaps", "-l", "app.kubernetes.io/managed-by=overseer", "-o", "json"
        ).stdout
        return {
            item["metadata"]["annotations"]["overseer.dev/commit"]
            for item in json.loads(out)["items"]
        }

    # Then the bundles of both commits exist: the running execution still needs the first
    commits = eventually(
        lambda: c if upstream.head in (c := bundle_commits()) else None, what="new bundle"
    )
    assert commits == {first, upstream.head}


def test_an_execution_runs_the_bin_of_its_commit_and_refuses_one_no_longer_kept(
    kube: Kube, operator: OperatorProcess, upstream: Upstream, synced: dict[str, dict[str, Any]]
) -> None:
    # Given a commit that changes bin/greet, and nothing else: the job stays as it was
    first = upstream.head
    upstream.commit({"bin/greet": ('#!/bin/sh\necho "hi again $1"\n', 0o755)}, "new greet")
    kube.kubectl(
        "annotate",
        "--overwrite",
        "overseerrepository",
        "jobs",
        f"overseer.dev/requested-sync={datetime.now(UTC).timestamp()}",
    )
    eventually(
        lambda: (
            kube.get("overseerrepository", "jobs").get("status", {}).get("commit") == upstream.head
        ),
        what="the new commit synced",
    )
    job = kube.get("overseerjob", synced["Greet"]["metadata"]["name"])
    assert job["spec"]["source"]["commit"] == first
    # When an execution asks for the job's commit, whose bin/ is no longer kept
    name, _ = execute(kube, job)
    # Then it fails at once, saying which commit to use, and no Job is made
    status = wait_for_phase(kube, name, ENDED)
    assert (status["phase"], status["reason"]) == ("Failed", "BinNotKept"), status
    assert first[:12] in status["message"] and "status.commit" in status["message"]
    assert listed(kube, "jobs", name) == []
    # And one at the repository's commit runs the new bin/greet
    name, _ = execute(kube, job, commit=upstream.head)
    status = wait_for_phase(kube, name, ENDED)
    assert status["phase"] == "Complete", status
    [pod] = listed(kube, "pods", name)
    assert stdout_of(kube, pod["metadata"]["name"]) == b"hi again world\n"
