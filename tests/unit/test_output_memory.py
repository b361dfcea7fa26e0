"""What the log followers keep of an execution once its status carries its output's end.

A scene of executions run through the real observation (:mod:`overseer.operator.executions`)
and followers (:mod:`overseer.operator.output`), over a local archive: every execution's
Job has completed, its pod has terminated, and its log is served whole.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from tests.support import fake_kube

from overseer import archive
from overseer import archive_local as archive_local_
from overseer.core import execution_job
from overseer.operator import context, executions, output
from overseer.operator.settings import Settings
from overseer_library import protocol

NS = "team-a"
LOG = b"".join(
    [
        protocol.encode(protocol.Start(1, 7, "python3", 1795938122.5)),
        protocol.encode(protocol.Output(2, "stdout", b"hello\n")),
        protocol.encode(protocol.Exit(3, code=0, signal=None, time=1795938124.0)),
    ]
)


def name_of(index: int) -> str:
    return f"nap-0123456789-1795938121-{index:06d}"


def pod_of(index: int) -> str:
    return f"{name_of(index)}-x7k2p"


def objects(index: int, *, ended: bool = True) -> dict[tuple[str, str], dict[str, Any]]:
    """An execution whose Job completed and whose pod's container exited 0 (``ended``),
    or whose container still runs."""
    name, uid = name_of(index), f"uid-{index}"
    execution = {
        "metadata": {"namespace": NS, "name": name, "uid": uid},
        "spec": {
            "job": "nap-0123456789",
            "executionId": f"{1795938121 + index}.000000",
            "trigger": {"type": "api"},
            "definition": {"name": "Nap", "command": "true"},
            "commit": "abc",
        },
        "status": {},
    }
    job = {
        "metadata": {
            "namespace": NS,
            "name": execution_job.job_name(name),
            "uid": f"job-{uid}",
            "ownerReferences": [{"kind": "OverseerExecution", "name": name, "uid": uid}],
        },
        "status": {"conditions": [{"type": "Complete", "status": "True"}] if ended else []},
    }
    started = {"startedAt": "2026-11-29T07:00:01Z"}
    state = {"terminated": {"exitCode": 0, **started}} if ended else {"running": started}
    pod = {
        "metadata": {
            "namespace": NS,
            "name": pod_of(index),
            "uid": f"pod-{uid}",
            "creationTimestamp": "2026-11-29T07:00:00Z",
            "labels": {execution_job.EXECUTION_LABEL: name, execution_job.EXECUTION_UID_LABEL: uid},
            "ownerReferences": [
                {"kind": "Job", "name": name, "uid": f"job-{uid}", "controller": True}
            ],
        },
        "status": {
            "phase": "Succeeded" if ended else "Running",
            "containerStatuses": [{"name": "job", "state": state}],
        },
    }
    return {("OverseerExecution", name): execution, ("Job", name): job, ("Pod", pod_of(index)): pod}


class Cluster(fake_kube.FakeKube):
    """Executions, their Jobs and pods in memory; each pod serves LOG."""

    def __init__(self, count: int, *, ended: bool = True) -> None:
        super().__init__()
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        for index in range(count):
            self.objects.update(objects(index, ended=ended))

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind, name))
        return copy.deepcopy(found) if found is not None else None

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        assert kind == "Pod" and labels is not None
        for (k, _), body in list(self.objects.items()):
            if k == kind and body["metadata"]["labels"].items() >= labels.items():
                yield copy.deepcopy(body)

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        self.writes["patch-status"] += 1
        body = self.objects[(kind, name)]
        body["status"] = {**body["status"], **copy.deepcopy(dict(status))}
        return copy.deepcopy(body)

    async def follow_log(self, namespace: str, pod: str, container: str) -> AsyncIterator[bytes]:
        self.reads["log"] += 1
        yield LOG

    async def delete_job(self, namespace: str, name: str) -> None:
        """Collected once its output is archived: it ended long ago (LOG's exit time)."""
        self.writes["delete-job"] += 1
        del self.objects[("Job", name)]


class Counted(archive_local_.LocalArchive):
    """Counts the looks at the archive (an object-store read each, with S3), and keeps
    the pods whose end it was told to forget (what the s3 backend remembers)."""

    stats = 0

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.forgotten: set[tuple[str, str, str | None]] = set()

    def forget_finished(self, namespace: str, name: str, pod: str | None) -> None:
        self.forgotten.add((namespace, name, pod))
        super().forget_finished(namespace, name, pod)

    async def stat(self, namespace: str, name: str) -> archive.Stat | None:
        self.stats += 1
        return await super().stat(namespace, name)


def scene(
    tmp_path: Path, count: int, *, ended: bool = True
) -> tuple[Cluster, Counted, output.Followers, context.Environment]:
    cluster, store = Cluster(count, ended=ended), Counted(tmp_path)
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    return cluster, store, followers, env_for(cluster, followers)


def env_for(cluster: Cluster, followers: output.Followers) -> context.Environment:
    return context.Environment(
        client=cluster,
        settings=Settings(retry_min=0.01, retry_max=0.02),
        tracker=context.Tracker(),
        post_event=lambda *_: None,
        output=followers,
    )


async def run_all(followers: output.Followers, env: context.Environment, count: int) -> None:
    """Observe each execution (its pod's log is then followed), and wait for the ends."""
    for index in range(count):
        await executions.observe_execution(context.Key(NS, name_of(index)), env)
    while running := followers.running():
        await asyncio.wait_for(asyncio.gather(*running), 10)
        await asyncio.sleep(0)


def archive_states(cluster: Cluster, count: int) -> set[str]:
    return {
        cluster.objects[("OverseerExecution", name_of(i))]["status"]["archive"]["state"]
        for i in range(count)
    }


COUNT = 200


async def test_the_followers_keep_nothing_per_execution_once_its_status_has_the_end(
    tmp_path: Path,
) -> None:
    # Given executions whose logs are followed to their end, and whose status says so
    cluster, store, followers, env = scene(tmp_path, COUNT)
    try:
        await run_all(followers, env, COUNT)
        assert archive_states(cluster, COUNT) == {"Complete"}
        # Then the followers hold no execution's report any more: memory stays bounded by
        # the executions in progress, not by every execution this process ever followed
        assert followers.held() == 0
        # And when their pods are deleted (the Job collected), the archive is not looked at
        # again, and no status is written
        stats, writes = store.stats, cluster.writes["patch-status"]
        for index in range(COUNT):
            gone = cluster.objects.pop(("Pod", pod_of(index)))
            key = context.Key(NS, name_of(index))
            await executions.observe_execution(key, env, pod=gone, pod_deleted=True)
        assert followers.running() == []
        assert (store.stats, cluster.writes["patch-status"]) == (stats, writes)
        assert followers.held() == 0
        # And the archive is told that no one will ask for those pods' end any more
        assert store.forgotten == {(NS, name_of(i), pod_of(i)) for i in range(COUNT)}
    finally:
        env.tracker.close()


async def test_after_a_restart_the_archive_is_told_to_the_status_and_not_kept(
    tmp_path: Path,
) -> None:
    # Given executions whose end a first operator recorded
    cluster, store, followers, env = scene(tmp_path, COUNT)
    try:
        await run_all(followers, env, COUNT)
    finally:
        env.tracker.close()
    writes = cluster.writes["patch-status"]
    # When a restarted operator resumes them (their pods are still there)
    restarted = output.Followers(store, retry_min=0.01, retry_max=0.02)
    env = env_for(cluster, restarted)
    try:
        await run_all(restarted, env, COUNT)
    finally:
        env.tracker.close()
    # Then it reads no log again, writes no status (each says Complete already) and keeps
    # no report
    assert cluster.reads["log"] == COUNT
    assert cluster.writes["patch-status"] == writes
    assert archive_states(cluster, COUNT) == {"Complete"}
    assert restarted.held() == 0


async def test_an_ended_execution_observed_again_opens_no_archive_and_writes_nothing(
    tmp_path: Path,
) -> None:
    # Given executions whose end is recorded
    cluster, store, followers, env = scene(tmp_path, 3)
    try:
        await run_all(followers, env, 3)
        stats, writes = store.stats, cluster.writes["patch-status"]
        # When they are observed again (a replay brings a settled one back to the watch)
        await run_all(followers, env, 3)
        # Then their pods' logs are not followed again, and the status keeps its archive
        assert (store.stats, cluster.writes["patch-status"]) == (stats, writes)
        assert archive_states(cluster, 3) == {"Complete"}
    finally:
        env.tracker.close()


async def test_a_running_execution_keeps_its_report_until_it_is_deleted(tmp_path: Path) -> None:
    # Given an execution whose pod's log was read to its exit frame, the Job not ended
    cluster, _, followers, env = scene(tmp_path, 1, ended=False)
    key = context.Key(NS, name_of(0))
    try:
        await run_all(followers, env, 1)
        status = cluster.objects[("OverseerExecution", name_of(0))]["status"]
        assert status["phase"] not in ("Complete", "Failed")
        assert status["archive"]["state"] == "Complete"
        # Then the report stays: a retry's pod, not read yet, is told Archiving
        assert followers.held() == 1
        retry = followers.archive(key, f"{name_of(0)}-retry")
        assert retry is not None and retry.state == "Archiving"
        # When the execution is deleted (its pod with it)
        for kind, name in [("OverseerExecution", name_of(0)), ("Pod", pod_of(0))]:
            del cluster.objects[(kind, name)]
        await executions.observe_execution(key, env)
        # Then nothing of it is kept
        assert followers.held() == 0
        assert followers.archive(key, pod_of(0)) is None
    finally:
        env.tracker.close()
