"""The execution reaction's own decisions: which pod counts, when a Job is stuck, locks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from overseer import errors
from overseer.core import execution_job, execution_observed
from overseer.crd import execution
from overseer.operator import context
from overseer.operator.settings import Settings

NAME = "greet-d4fd03eee1-1795938121-109918"
JOB_UID = "job-uid"


def job(*conditions: str) -> dict[str, Any]:
    return {
        "metadata": {"name": NAME, "uid": JOB_UID},
        "status": {"conditions": [{"type": c, "status": "True"} for c in conditions]},
    }


def pod(
    name: str,
    created: str = "2026-11-29T07:00:00Z",
    *,
    owner: str = NAME,
    owner_uid: str = JOB_UID,
    phase: str = "Running",
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "ownerReferences": [
                {"kind": "Job", "name": owner, "uid": owner_uid, "controller": True}
            ],
        },
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "job", "state": state or {"running": {}}}],
        },
    }


def test_the_newest_pod_of_the_job_is_observed() -> None:
    old = pod("old", "2026-11-29T07:00:00Z")
    new = pod("new", "2026-11-29T07:00:05Z")
    observed = execution_observed.build_observed(NAME, job(), [new, old])
    assert observed.pod is new
    assert not observed.pod_gone


def test_a_pod_that_only_carries_the_label_is_ignored() -> None:
    forged = pod("forged", "2026-11-29T08:00:00Z", owner="other")
    foreign = pod("foreign", "2026-11-29T08:00:00Z", owner_uid="another-uid")
    real = pod("real")
    observed = execution_observed.build_observed(NAME, job(), [forged, foreign, real])
    assert observed.pod is real


def test_a_deleted_pod_is_observed_gone_in_its_last_state() -> None:
    last = pod("p", state={"terminated": {"exitCode": 143}})
    observed = execution_observed.build_observed(NAME, job(), [], last, pod_deleted=True)
    assert observed.pod is last
    assert observed.pod_gone
    # a newer pod (a retry) wins over a deleted older one
    retry = pod("retry", "2026-11-29T07:01:00Z")
    observed = execution_observed.build_observed(NAME, job(), [retry], last, pod_deleted=True)
    assert observed.pod is retry and not observed.pod_gone


def test_an_event_pod_missing_from_the_list_counts() -> None:
    fresh = pod("fresh")
    assert execution_observed.build_observed(NAME, job(), [], fresh).pod is fresh


def test_a_recorded_pod_or_job_that_vanished_is_gone() -> None:
    seen = execution.ExecutionStatus(pod_name="p", job_name=NAME)
    observed = execution_observed.build_observed(NAME, job(), [], previous=seen)
    assert (observed.pod, observed.pod_name, observed.pod_gone) == (None, "p", True)
    created = execution.ExecutionStatus(job_name=NAME)
    observed = execution_observed.build_observed(NAME, None, [], previous=created)
    assert observed.pod_gone
    # nothing recorded yet: the pod is still to come
    assert not execution_observed.build_observed(NAME, job(), []).pod_gone


def test_only_a_job_whose_container_never_started_is_stuck() -> None:
    waiting = pod("p", phase="Pending", state={"waiting": {"reason": "ImagePullBackOff"}})
    assert execution_observed.job_is_stuck(job(), waiting)
    # a fast job: the container ended, and the pod's phase still says Pending
    ended = pod("p", phase="Pending", state={"terminated": {"exitCode": 0}})
    assert not execution_observed.job_is_stuck(job(), ended)
    assert not execution_observed.job_is_stuck(job("Failed"), waiting)
    assert not execution_observed.job_is_stuck(job(), pod("p"))
    assert not execution_observed.job_is_stuck(job(), None)


async def test_work_on_one_execution_is_serialised_and_locks_are_dropped() -> None:
    tracker = context.Tracker()
    key = context.Key("ns", NAME)
    order: list[str] = []

    async def work(label: str) -> None:
        async with tracker.hold(key):
            order.append(f"{label} in")
            await asyncio.sleep(0.01)
            order.append(f"{label} out")

    await asyncio.gather(work("a"), work("b"))
    assert order == ["a in", "a out", "b in", "b out"]
    assert len(tracker._locks) == 0


async def test_a_recheck_replaces_the_one_planned() -> None:
    tracker = context.Tracker()
    key = context.Key("ns", NAME)
    ran: list[str] = []

    async def run(label: str) -> None:
        ran.append(label)

    tracker.recheck(key, 0.01, lambda: run("first"))
    tracker.recheck(key, 0.02, lambda: run("second"))
    await asyncio.sleep(0.1)
    assert ran == ["second"]
    tracker.recheck(key, 0.01, lambda: run("cancelled"))
    tracker.close()
    await asyncio.sleep(0.05)
    assert ran == ["second"]


def test_the_library_image_and_its_pull_policy_are_settings() -> None:
    assert Settings.from_env({}).job_settings == execution_job.JobSettings(
        library_image="localhost/overseer/library:dev", image_pull_policy="IfNotPresent"
    )
    chosen = Settings.from_env(
        {"OVERSEER_LIBRARY_IMAGE": "registry.example/lib:1", "OVERSEER_IMAGE_PULL_POLICY": "Always"}
    )
    assert chosen.job_settings.library_image == "registry.example/lib:1"
    assert chosen.job_settings.image_pull_policy == "Always"
    with pytest.raises(errors.SettingsError, match="IfNotPresent"):
        Settings.from_env({"OVERSEER_IMAGE_PULL_POLICY": "Sometimes"})
    with pytest.raises(errors.SettingsError, match="OVERSEER_LIBRARY_IMAGE"):
        Settings.from_env({"OVERSEER_LIBRARY_IMAGE": "two words"})


def test_a_killed_execution_stops_its_job_only_while_retries_could_start_a_pod() -> None:
    killed = execution.ExecutionStatus(phase="Killed")
    retrying = {**job(), "spec": {"backoffLimit": 2}}
    assert execution_observed.killed_but_retried(killed, retrying)
    # The Job gave up or finished by itself, or never retries: nothing to stop
    assert not execution_observed.killed_but_retried(
        killed, {**job("Failed"), "spec": {"backoffLimit": 2}}
    )
    assert not execution_observed.killed_but_retried(killed, {**job(), "spec": {"backoffLimit": 0}})
    assert not execution_observed.killed_but_retried(
        execution.ExecutionStatus(phase="Failed"), retrying
    )


def test_whose_a_job_is_goes_by_the_owner_uid_never_the_name() -> None:
    def owned(*refs: dict[str, str]) -> dict[str, object]:
        return {"metadata": {"name": "run", "ownerReferences": list(refs)}}

    mine = {"kind": "OverseerExecution", "name": "run", "uid": "u-2"}
    earlier = {"kind": "OverseerExecution", "name": "run", "uid": "u-1"}
    other = {"kind": "ConfigMap", "name": "run", "uid": "u-2"}
    assert execution_observed.owner_of(owned(mine), "u-2", "run") == "ours"
    assert execution_observed.owner_of(owned(earlier), "u-2", "run") == "earlier"
    assert execution_observed.owner_of(owned(other), "u-2", "run") == "other"
    assert execution_observed.owner_of(owned(), "u-2", "run") == "other"
