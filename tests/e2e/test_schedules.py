"""Schedules create executions on time, once each; concurrency limits apply to every run.

Real git repository, the real operator process, the real cluster. Schedule tests wait
for real minute boundaries (``* * * * *``), so they take a minute or three each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from overseer.core import names
from tests.e2e.test_executions import ENDED as TERMINAL
from tests.e2e.test_executions import status_of, wait_for_phase
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, execution, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

SCHEDULED = """\
- name: Every minute
  schedule: "* * * * *"
  command: "true"
"""
LIMITED = """\
- name: Forbidden twice
  concurrency: {limit: 1, policy: forbid}
  command: [sleep, "300"]
- name: One at a time
  concurrency: {limit: 1, policy: queue}
  command: [sleep, "8"]
- name: Newest wins
  concurrency: {limit: 1, policy: replace}
  command: [sleep, "300"]
- name: Backup db
  concurrency: {limit: 1, policy: forbid, group: database}
  command: [sleep, "300"]
- name: Vacuum db
  concurrency: {limit: 1, policy: forbid, group: database}
  command: [sleep, "300"]
"""
LIMITED_NAMES = {"Forbidden twice", "One at a time", "Newest wins", "Backup db", "Vacuum db"}


# --- Given / When / Then helpers ----------------------------------------------------------


def executions_of(kube: Kube, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The OverseerExecutions of JOB, oldest first."""
    items = json.loads(kube.kubectl("get", "overseerexecutions", "-o", "json").stdout)["items"]
    mine = [i for i in items if i["spec"]["job"] == job["metadata"]["name"]]
    return sorted(mine, key=lambda i: names.parse_execution_id(i["spec"]["executionId"]))


def scheduled_times(kube: Kube, job: dict[str, Any]) -> list[datetime]:
    """The scheduled time of each scheduled execution of JOB, oldest first."""
    return [
        names.parse_execution_id(i["spec"]["executionId"])
        for i in executions_of(kube, job)
        if i["spec"]["trigger"]["type"] == "schedule"
    ]


def job_status(kube: Kube, job: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = kube.get("overseerjob", job["metadata"]["name"]).get("status") or {}
    return status


def next_schedule_time(kube: Kube, job: dict[str, Any]) -> datetime | None:
    announced = job_status(kube, job).get("nextScheduleTime")
    return datetime.fromisoformat(announced) if announced else None


def execute(kube: Kube, job: dict[str, Any]) -> str:
    """Create an execution of JOB as the API does; return its resource name."""
    manifest = execution(job, trigger="api")
    kube.create(manifest)
    return str(manifest["metadata"]["name"])


def jobs_of(kube: Kube, name: str) -> list[dict[str, Any]]:
    """The batch/v1 Jobs of execution NAME."""
    out = kube.kubectl("get", "jobs", "-l", f"overseer.dev/execution={name}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def release_repositories(kube: Kube) -> None:
    """Drop kopf's finalizer from repositories left behind (the test failed while no
    operator ran), so that the namespace can go."""
    out = kube.kubectl("get", "overseerrepositories", "-o", "name", check=False).stdout
    for name in out.split():
        kube.kubectl(
            "patch", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False
        )


def wait_past(moment: datetime) -> None:
    """Sleep until the wall clock is past MOMENT: the schedule itself is time."""
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        time.sleep(delay)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


# --- schedules ----------------------------------------------------------------------------


@pytest.fixture
def scheduled_upstream(tmp_path: Path) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "scheduled.git")
    repo.commit({"jobs.yml": SCHEDULED}, "a job every minute")
    return repo


def test_a_scheduled_job_runs_every_minute_and_stops_when_deactivated(
    kube: Kube, operator: OperatorProcess, scheduled_upstream: Upstream
) -> None:
    # Given a job scheduled every minute
    kube.apply(repository("scheduled", scheduled_upstream.file_url))
    job = wait_for_jobs(kube, {"Every minute"})["Every minute"]
    # Then its status announces the next minute
    status = eventually(
        lambda: (s := job_status(kube, job)).get("nextScheduleTime") and s,
        timeout=60,
        what="nextScheduleTime",
    )
    announced = datetime.fromisoformat(status["nextScheduleTime"])
    assert announced == minute_of(announced)
    assert announced > datetime.now(UTC) - timedelta(seconds=5)
    # And within about a minute an execution triggered by the schedule exists, for that time
    [first] = eventually(lambda: scheduled_times(kube, job), timeout=90, what="a scheduled run")
    assert first == announced
    [run] = executions_of(kube, job)
    assert run["spec"]["trigger"] == {"type": "schedule"}
    assert run["metadata"]["labels"]["overseer.dev/job"] == job["metadata"]["name"]
    assert run["metadata"]["annotations"]["overseer.dev/scheduled-time"] == (
        first.isoformat().replace("+00:00", "Z")
    )
    # And it runs to completion
    done = wait_for_phase(kube, run["metadata"]["name"], TERMINAL)
    assert done["phase"] == "Complete", done
    # And the job's status announces the following minute
    # (lastScheduleTime is checked in tests/unit/test_scheduler.py: on a cluster shared with
    # checkouts whose CRDs lack the field, the API server may drop it from the status.)
    eventually(
        lambda: next_schedule_time(kube, job) == first + timedelta(minutes=1),
        what="nextScheduleTime to move on",
    )
    # When the job is deactivated (as the API's DELETE does)
    kube.kubectl(
        "patch",
        "overseerjob",
        job["metadata"]["name"],
        "--type=merge",
        "-p",
        '{"spec":{"active":false}}',
        "--field-manager=overseer-api",
    )
    # Then it announces no next run
    eventually(
        lambda: "nextScheduleTime" not in job_status(kube, job), what="nextScheduleTime removed"
    )
    # And the next minute boundaries pass without a new execution
    count = len(scheduled_times(kube, job))
    wait_past(minute_of(datetime.now(UTC)) + timedelta(minutes=1, seconds=15))
    assert len(scheduled_times(kube, job)) == count
    operator.check_alive()


def test_an_operator_down_across_minutes_runs_only_the_latest_missed_time_once(
    kube: Kube, overseer_crds: None, tmp_path: Path, scheduled_upstream: Upstream
) -> None:
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    try:
        with run_operator(kube.cluster, kube.namespace, first_dir) as operator:
            # Given a job scheduled every minute, that ran once
            kube.apply(repository("scheduled", scheduled_upstream.file_url))
            job = wait_for_jobs(kube, {"Every minute"})["Every minute"]
            [first] = eventually(
                lambda: scheduled_times(kube, job), timeout=90, what="a scheduled run"
            )
            eventually(
                lambda: next_schedule_time(kube, job) == first + timedelta(minutes=1),
                what="nextScheduleTime to move on",
            )
            operator.check_alive()
        # When the operator is down across two more minute boundaries
        stopped_at = datetime.now(UTC)
        assert scheduled_times(kube, job) == [first], "the stopped operator created no more"
        missed = [first + timedelta(minutes=1), first + timedelta(minutes=2)]
        wait_past(missed[-1] + timedelta(seconds=5))
        assert scheduled_times(kube, job) == [first]
        with run_operator(kube.cluster, kube.namespace, second_dir) as operator:
            restarted_at = datetime.now(UTC)
            # Then the restarted operator creates one execution: the latest missed time
            times = eventually(
                lambda: (t := scheduled_times(kube, job))[1:] and t,
                timeout=60,
                what="the catch-up run",
            )
            latest_missed = minute_of(restarted_at)
            assert times == [first, latest_missed], (stopped_at, restarted_at, times)
            assert missed[0] not in times  # the older missed time is skipped
            # And it announces the next minute, and runs it as usual, once
            eventually(
                lambda: next_schedule_time(kube, job) == latest_missed + timedelta(minutes=1),
                what="nextScheduleTime after the catch-up",
            )
            following = latest_missed + timedelta(minutes=1)
            eventually(
                lambda: following in scheduled_times(kube, job), timeout=90, what="the next run"
            )
            wait_past(following + timedelta(seconds=10))
            assert scheduled_times(kube, job) == [first, latest_missed, following]
            assert "schedule of" in operator.log()
            operator.check_alive()
            # The operator's finalizer holds each repository: delete them while it runs.
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s")
    finally:
        release_repositories(kube)


# --- concurrency --------------------------------------------------------------------------


@pytest.fixture
def limited(kube: Kube, tmp_path: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """Given a repository of jobs with concurrency limits: its OverseerJobs by name."""
    repo = Upstream.create(tmp_path / "git" / "limited.git")
    repo.commit({"jobs.yml": LIMITED}, "jobs with concurrency limits")
    kube.apply(repository("limited", repo.file_url))
    yield wait_for_jobs(kube, LIMITED_NAMES)


def test_forbid_fails_a_second_execution_at_once_naming_the_running_one(
    kube: Kube, operator: OperatorProcess, limited: dict[str, dict[str, Any]]
) -> None:
    job = limited["Forbidden twice"]
    # Given a running execution of a job limited to one (forbid)
    first = execute(kube, job)
    assert wait_for_phase(kube, first, {"Running"} | TERMINAL)["phase"] == "Running"
    # When another execution is created
    second = execute(kube, job)
    # Then it fails at once, naming the running one, with a fail event and no Job
    status = wait_for_phase(kube, second, TERMINAL, timeout=30)
    assert (status["phase"], status["reason"]) == ("Failed", "ConcurrencyLimit"), status
    assert first in status["message"]
    assert "forbid" in status["message"]
    assert [e["status"] for e in status["events"]] == ["fail"]
    assert jobs_of(kube, second) == []
    # And the first one still runs
    assert status_of(kube, first)["phase"] == "Running"


def test_queue_holds_a_second_execution_until_the_first_ends(
    kube: Kube, operator: OperatorProcess, limited: dict[str, dict[str, Any]]
) -> None:
    job = limited["One at a time"]
    # Given a running execution of a job limited to one (queue) that sleeps 8s
    first = execute(kube, job)
    assert wait_for_phase(kube, first, {"Running"} | TERMINAL)["phase"] == "Running"
    # When another execution is created
    second = execute(kube, job)
    # Then it waits, Pending and Queued, without a Job
    queued = eventually(
        lambda: (s := status_of(kube, second)).get("reason") == "Queued" and s,
        timeout=30,
        what="the second to be queued",
    )
    assert queued["phase"] == "Pending"
    assert "queue" in queued["message"]
    if status_of(kube, first)["phase"] == "Running":
        assert jobs_of(kube, second) == []
    # And it runs once the first has ended, and completes
    done_first = wait_for_phase(kube, first, TERMINAL)
    assert done_first["phase"] == "Complete", done_first
    done_second = wait_for_phase(kube, second, TERMINAL, timeout=120)
    assert done_second["phase"] == "Complete", done_second
    assert done_second["startTime"] >= done_first["completionTime"]
    assert [e["status"] for e in done_second["events"]] == ["start", "complete"]


def test_a_queued_execution_asked_to_stop_never_starts(
    kube: Kube, operator: OperatorProcess, limited: dict[str, dict[str, Any]]
) -> None:
    job = limited["One at a time"]
    # Given a running execution and a queued one
    first = execute(kube, job)
    assert wait_for_phase(kube, first, {"Running"} | TERMINAL)["phase"] == "Running"
    second = execute(kube, job)
    eventually(lambda: status_of(kube, second).get("reason") == "Queued", timeout=30, what="queued")
    # When SIGTERM is requested for the queued one (as the API's kill does)
    request = {"signal": "SIGTERM", "requestedAt": datetime.now(UTC).isoformat()}
    kube.kubectl(
        "patch",
        "overseerexecution",
        second,
        "--type=json",
        "-p",
        json.dumps([{"op": "add", "path": "/spec/signals", "value": [request]}]),
    )
    # Then it ends Killed (Cancelled) at once, with a fail event, and never gets a Job
    status = wait_for_phase(kube, second, TERMINAL, timeout=30)
    assert (status["phase"], status["reason"]) == ("Killed", "Cancelled"), status
    assert [e["status"] for e in status["events"]] == ["fail"]
    assert jobs_of(kube, second) == []
    # And the first one runs on, untouched
    assert status_of(kube, first)["phase"] in {"Running", "Complete"}


def test_a_group_limits_executions_across_jobs(
    kube: Kube, operator: OperatorProcess, limited: dict[str, dict[str, Any]]
) -> None:
    # Given a running execution of a job in the group "database" (limit 1, forbid)
    backup = execute(kube, limited["Backup db"])
    assert wait_for_phase(kube, backup, {"Running"} | TERMINAL)["phase"] == "Running"
    # And a job outside the group running beside it
    other = execute(kube, limited["Forbidden twice"])
    assert wait_for_phase(kube, other, {"Running"} | TERMINAL)["phase"] == "Running"
    # When an execution of another job of the same group is created
    vacuum = execute(kube, limited["Vacuum db"])
    # Then it is refused, naming the group and the running execution of the other job
    status = wait_for_phase(kube, vacuum, TERMINAL, timeout=30)
    assert (status["phase"], status["reason"]) == ("Failed", "ConcurrencyLimit"), status
    assert "group database" in status["message"]
    assert backup in status["message"]
    assert other not in status["message"]


def test_replace_requests_sigterm_for_the_running_execution_and_waits(
    kube: Kube, operator: OperatorProcess, limited: dict[str, dict[str, Any]]
) -> None:
    job = limited["Newest wins"]
    # Given a running execution of a job limited to one (replace)
    first = execute(kube, job)
    assert wait_for_phase(kube, first, {"Running"} | TERMINAL)["phase"] == "Running"
    # When another execution is created
    second = execute(kube, job)
    # Then SIGTERM is requested for the running one, once
    signals = eventually(
        lambda: kube.get("overseerexecution", first)["spec"].get("signals"),
        timeout=30,
        what="a signal request",
    )
    assert [s["signal"] for s in signals] == ["SIGTERM"]
    # And the new one waits for it, Pending and Replacing
    waiting = eventually(
        lambda: (s := status_of(kube, second)).get("reason") == "Replacing" and s,
        timeout=30,
        what="the second to wait",
    )
    assert waiting["phase"] == "Pending"
    assert first in waiting["message"]
    assert [s["signal"] for s in kube.get("overseerexecution", first)["spec"]["signals"]] == [
        "SIGTERM"
    ]


def test_replace_starts_the_new_execution_once_the_old_one_is_killed(
    kube: Kube, operator: OperatorProcess, limited: dict[str, dict[str, Any]]
) -> None:
    job = limited["Newest wins"]
    # Given a running execution of a job limited to one (replace)
    first = execute(kube, job)
    assert wait_for_phase(kube, first, {"Running"} | TERMINAL)["phase"] == "Running"
    # When another execution is created
    second = execute(kube, job)
    # Then the first is killed by the requested SIGTERM
    killed = wait_for_phase(kube, first, TERMINAL, timeout=90)
    assert (killed["phase"], killed.get("signal")) == ("Killed", "SIGTERM"), killed
    # And the second runs
    running = wait_for_phase(kube, second, {"Running"} | TERMINAL, timeout=90)
    assert running["phase"] == "Running", running
    assert running["startTime"] >= killed["completionTime"]
