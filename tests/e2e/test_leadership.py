"""Two operators, one leader: only the holder of the namespace's Lease acts (issue 13, item 1).

Real operator processes on this host against the real cluster, sharing one archive
directory (as replicas share a claim or a bucket), a real git repository and a real
webhook receiver on loopback. The leader is SIGKILLed in the middle of a 20-second
execution; the standby must take over within 30 s and finish the work exactly once.
A third operator with the wrong settings (another namespace list, another library
image, another archive) stands by and does nothing. The /metrics page of each says
what it did (issue 13, item 11).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from overseer.core import execution_job
from tests.e2e.test_execution_output import Archive
from tests.e2e.test_executions import ENDED, execute, listed, status_of, wait_for_phase
from tests.e2e.test_webhooks import OPERATOR_ENV
from tests.support import recorder
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

LINES = 40
# About 20 s: a numbered line (and some bytes no encoding likes) every half second,
# and a custom event halfway.
LONG = f"""\
import subprocess, sys, time
for i in range({LINES}):
    sys.stdout.buffer.write(b"line %03d \\x00\\xff\\n" % i); sys.stdout.buffer.flush()
    if i == {LINES // 2}:
        subprocess.run(["event", "halfway", '{{"line": {LINES // 2}}}'], check=True)
    time.sleep(0.5)
"""
EXPECTED = b"".join(b"line %03d \x00\xff\n" % i for i in range(LINES))
NAMES = {"Long", "Short", "Every minute"}


def jobs_yaml(hook: str, *, scheduled: bool = True) -> str:
    every_minute = {"name": "Every minute", "schedule": "* * * * *", "command": "true"}
    return yaml.safe_dump(
        [
            {
                "name": "Long",
                "command": ["python3", "-c", LONG],
                "hooks": {"start": hook, "halfway": hook, "complete": hook},
            },
            {"name": "Short", "command": "echo short", "hooks": {"start": hook, "complete": hook}},
            *([every_minute] if scheduled else []),
        ]
    )


@pytest.fixture
def receiver() -> Iterator[recorder.Recorder]:
    with recorder.serve() as served:
        yield served


@pytest.fixture
def upstream(tmp_path: Path, receiver: recorder.Recorder) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit({"jobs.yml": jobs_yaml(f"{receiver.url}/hook")}, "jobs with hooks")
    return repo


def stood_by(operator: OperatorProcess) -> None:
    """Give a second operator time to start (and, wrongly, to act); it must still run."""
    time.sleep(5)
    operator.check_alive()


@pytest.fixture
def archive(tmp_path: Path, kube: Kube) -> Archive:
    return Archive(tmp_path / "archive", kube.namespace)


@dataclasses.dataclass
class Given:
    kube: Kube
    upstream: Upstream
    receiver: recorder.Recorder
    archive: Archive
    workdir: Path


@pytest.fixture
def given(
    kube: Kube,
    overseer_crds: None,
    upstream: Upstream,
    receiver: recorder.Recorder,
    archive: Archive,
) -> Given:
    return Given(kube, upstream, receiver, archive, workdir=archive.root.parent)


def env_of(archive: Archive) -> dict[str, str]:
    """The settings of every replica: the same archive, secret and hook policy."""
    return {**OPERATOR_ENV, "OVERSEER_ARCHIVE_DIR": str(archive.root)}


def start(kube: Kube, workdir: Path, env: dict[str, str], namespaces: str = "") -> Any:
    workdir.mkdir()
    return run_operator(kube.cluster, namespaces or kube.namespace, workdir, extra_env=env)


def deliveries_by_id(receiver: recorder.Recorder) -> collections.Counter[str]:
    return collections.Counter(r.headers["webhook-id"] for r in receiver.requests)


def delivered(kube: Kube, name: str, count: int) -> list[dict[str, Any]] | None:
    """The execution's delivery records once COUNT of them are Delivered."""
    records: list[dict[str, Any]] = status_of(kube, name).get("deliveries") or []
    done = [r for r in records if r.get("status") == "Delivered"]
    return records if len(done) >= count else None


def lease_holder(kube: Kube) -> str:
    found = kube.kubectl("get", "lease", "overseer-operator", "-o", "json", check=False)
    if found.returncode != 0:
        return ""
    return str(json.loads(found.stdout)["spec"].get("holderIdentity") or "")


def minutes_between(start: datetime, end: datetime) -> set[str]:
    """The scheduled times (as annotated) of the minutes after START, until END - 10 s."""
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found = set()
    while minute <= end - timedelta(seconds=10):
        found.add(minute.strftime("%Y-%m-%dT%H:%M:%SZ"))
        minute += timedelta(minutes=1)
    return found


def near_the_end_of_a_minute() -> None:
    """Wait for second 45 of a minute (the start, the output and the kill take ~8 s)."""
    second = datetime.now(UTC).second + datetime.now(UTC).microsecond / 1e6
    time.sleep((45 - second) % 60)


def scheduled_runs(kube: Kube, job: dict[str, Any]) -> collections.Counter[str]:
    """Executions of JOB by their scheduled time."""
    items = json.loads(kube.kubectl("get", "overseerexecutions", "-o", "json").stdout)["items"]
    return collections.Counter(
        i["metadata"]["annotations"]["overseer.dev/scheduled-time"]
        for i in items
        if i["spec"]["job"] == job["metadata"]["name"]
    )


def test_killing_the_leader_mid_execution_hands_over_once_and_loses_nothing(given: Given) -> None:
    kube, upstream, receiver, archive = given.kube, given.upstream, given.receiver, given.archive
    tmp_path = given.workdir
    env = env_of(archive)
    # Given a leader that synced the jobs, and a second operator started beside it
    with start(kube, tmp_path / "a", env) as leader:
        kube.apply(repository("jobs", upstream.file_url))
        jobs = wait_for_jobs(kube, NAMES)
        synced_at = datetime.now(UTC)
        with start(kube, tmp_path / "b", env) as standby:
            try:
                stood_by(standby)
                # When a 20-second execution runs, and its start was delivered once
                near_the_end_of_a_minute()  # so that the kill leaves a slot without a leader
                name, _ = execute(kube, jobs["Long"])
                eventually(lambda: delivered(kube, name, 1), 60, "the start delivery")
                eventually(lambda: (archive.read(name, "stdout") or b"").count(b"\n") >= 4, 30)
                time.sleep(1)  # a second operator that acts too would deliver it again now
                assert sorted(deliveries_by_id(receiver).values()) == [1], receiver.requests
                assert "leading:" not in standby.log()
                (job,) = listed(kube, "jobs", name)
                # and the leader is SIGKILLed in the middle of it
                leader.process.kill()
                killed = time.monotonic()
                standby.wait_for_log("leading:", timeout=45)
                handover = time.monotonic() - killed
                # Then the standby finishes it: one phase, one Job, output byte for byte
                status = wait_for_phase(kube, name, ENDED, timeout=120)
                assert status["phase"] == "Complete", status
                assert [j["metadata"]["uid"] for j in listed(kube, "jobs", name)] == [
                    job["metadata"]["uid"]
                ]
                state = archive.wait_complete(name)
                assert archive.read(name, "stdout") == EXPECTED, state
                assert [e["status"] for e in status["events"]] == ["start", "halfway", "complete"]
                # and each of the three events reached the receiver exactly once
                records = eventually(lambda: delivered(kube, name, 3), 60, "three deliveries")
                assert sorted(deliveries_by_id(receiver).values()) == [1, 1, 1], records
                assert {r["status"] for r in records} == {"Delivered"}, records
                # and every minute since the sync ran once, the one without a leader too
                runs = scheduled_runs(kube, jobs["Every minute"])
                assert all(count == 1 for count in runs.values()), runs
                assert set(runs) >= minutes_between(synced_at, datetime.now(UTC)), runs
                assert standby.metric("overseer_leader") == 1
            finally:
                kube.kubectl(
                    "delete", "overseerrepositories", "--all", "--timeout=60s", check=False
                )
    print(f"handover: the standby led {handover:.1f}s after the leader was SIGKILLed")
    assert handover < 30, f"the standby took over {handover:.1f}s after the leader was killed"


def test_a_leader_frozen_past_its_lease_is_fenced_and_stands_by_when_it_wakes(
    given: Given,
) -> None:
    kube, upstream, receiver, archive = given.kube, given.upstream, given.receiver, given.archive
    env = env_of(archive)
    with start(kube, given.workdir / "a", env) as leader:
        kube.apply(repository("jobs", upstream.file_url))
        jobs = wait_for_jobs(kube, NAMES)
        with start(kube, given.workdir / "b", env) as standby:
            try:
                stood_by(standby)
                # Given a running execution whose start was delivered
                name, _ = execute(kube, jobs["Long"])
                eventually(lambda: delivered(kube, name, 1), 60, "the start delivery")
                # When the leader freezes (SIGSTOP) until the standby has taken over
                leader.process.send_signal(signal.SIGSTOP)
                standby.wait_for_log("leading:", timeout=45)
                time.sleep(3)
                leader.process.send_signal(signal.SIGCONT)
                # Then it wakes fenced off: it stops acting, stands by again, alive
                leader.wait_for_log("deposed", timeout=15)
                leader.wait_for_log("standing by", count=1, timeout=30)
                status = wait_for_phase(kube, name, ENDED, timeout=120)
                assert status["phase"] == "Complete", status
                archive.wait_complete(name)
                assert archive.read(name, "stdout") == EXPECTED
                eventually(lambda: delivered(kube, name, 3), 60, "three deliveries")
                time.sleep(2)
                assert sorted(deliveries_by_id(receiver).values()) == [1, 1, 1]
                assert (leader.metric("overseer_leader"), standby.metric("overseer_leader")) == (
                    0,
                    1,
                )
                leader.check_alive()
            finally:
                kube.kubectl(
                    "delete", "overseerrepositories", "--all", "--timeout=60s", check=False
                )


def test_an_operator_with_the_wrong_settings_stands_by_and_metrics_say_who_leads(
    given: Given,
) -> None:
    kube, upstream, receiver, archive = given.kube, given.upstream, given.receiver, given.archive
    tmp_path = given.workdir
    other = kube.cluster.create_namespace("leadership-other")
    # no schedule here: every execution the metrics count is this test's one
    upstream.commit({"jobs.yml": jobs_yaml(f"{receiver.url}/hook", scheduled=False)}, "no cron")
    wrong = {
        **OPERATOR_ENV,
        "OVERSEER_LIBRARY_IMAGE": "localhost/overseer/library:wrong",
        "OVERSEER_ARCHIVE_DIR": str(tmp_path / "wrong-archive"),
        "OVERSEER_LEASE_DURATION": "3s",
        "OVERSEER_LEASE_RENEW_DEADLINE": "2s",
        "OVERSEER_LEASE_RETRY_PERIOD": "1s",
    }
    try:
        # Given the leader, and an operator started by mistake: another namespace list,
        # another image, another archive, a shorter lease
        with start(kube, tmp_path / "a", env_of(archive)) as leader:
            kube.apply(repository("jobs", upstream.file_url))
            jobs = wait_for_jobs(kube, NAMES - {"Every minute"})
            with start(kube, tmp_path / "c", wrong, f"{other},{kube.namespace}") as mistake:
                try:
                    stood_by(mistake)
                    # When a job runs
                    name, _ = execute(kube, jobs["Short"])
                    status = wait_for_phase(kube, name, ENDED)
                    records = eventually(lambda: delivered(kube, name, 2), 60, "deliveries")
                    time.sleep(2)
                    # Then only the leader acted: its image, its archive, one delivery each
                    assert status["phase"] == "Complete", status
                    (pod,) = listed(kube, "pods", name)
                    images = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
                    assert images[execution_job.CONTAINER] == execution_job.LIBRARY_IMAGE
                    assert archive.read(name, "stdout") == b"short\n"
                    assert not (tmp_path / "wrong-archive" / kube.namespace).exists()
                    assert sorted(deliveries_by_id(receiver).values()) == [1, 1], records
                    assert "leading:" not in mistake.log()
                    assert lease_holder(kube) in leader.log()
                    check_metrics(leader, mistake)
                finally:
                    kube.kubectl(
                        "delete", "overseerrepositories", "--all", "--timeout=60s", check=False
                    )
    finally:
        kube.cluster.delete_namespace(other)


def check_metrics(leader: OperatorProcess, standby: OperatorProcess) -> None:
    """The leader's counters moved with the run; the standby's say it stands by."""
    assert leader.metric("overseer_leader") == 1
    assert standby.metric("overseer_leader") == 0
    assert leader.metric("overseer_executions_total", phase="Complete") == 1
    assert leader.metric("overseer_webhook_deliveries_total", outcome="Delivered") == 2
    assert leader.metric("overseer_webhook_delivery_duration_seconds_count") == 2
    assert leader.metric("overseer_archive_bytes_total", stream="stdout") == len(b"short\n")
    assert leader.metric("overseer_sync_duration_seconds_count", repository="jobs") >= 1
    assert leader.metric("overseer_sync_errors_total") == 0
    assert leader.metric("overseer_output_follower_lag_seconds_count") >= 1
    assert standby.metric("overseer_executions_total") == 0
    assert standby.metric("overseer_webhook_deliveries_total") == 0


def test_a_lone_operator_that_lost_its_lease_takes_it_back_and_acts_again(given: Given) -> None:
    """Seen under load (bench/scale.py): an operator late to renew lost its Lease, took
    it back in the same process, and then handled nothing at all."""
    kube, upstream, archive = given.kube, given.upstream, given.archive
    short_lease = {
        **env_of(archive),
        "OVERSEER_LEASE_DURATION": "3s",
        "OVERSEER_LEASE_RENEW_DEADLINE": "2s",
        "OVERSEER_LEASE_RETRY_PERIOD": "1s",
    }
    with start(kube, given.workdir / "a", short_lease) as alone:
        try:
            kube.apply(repository("jobs", upstream.file_url))
            jobs = wait_for_jobs(kube, NAMES)
            alone.wait_for_log("leading:", count=1, timeout=30)
            # When it freezes past its Lease, with no other operator to take over
            alone.process.send_signal(signal.SIGSTOP)
            time.sleep(8)
            alone.process.send_signal(signal.SIGCONT)
            # Then it is deposed, leads again in the same process
            alone.wait_for_log("deposed", timeout=30)
            alone.wait_for_log("leading:", count=2, timeout=60)
            # And acts again: an execution made now runs, is archived and delivered
            name, _ = execute(kube, jobs["Short"])
            status = wait_for_phase(kube, name, ENDED, timeout=120)
            assert status["phase"] == "Complete", status
            archive.wait_complete(name)
            assert archive.read(name, "stdout") == b"short\n"
            eventually(lambda: delivered(kube, name, 2), 60, "the start and complete deliveries")
            assert alone.metric("overseer_leader") == 1
            alone.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
