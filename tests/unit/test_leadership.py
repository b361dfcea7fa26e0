"""Leader election: the pure decisions on a Lease, and two electors sharing Leases in memory.

The electors run against :class:`LeaseStore`, the one fake client with Leases and a
compare-and-swap on ``resourceVersion`` (as the API server does), with timings of tenths
of a second. The property that matters: a leader that cannot renew is fenced off before
any other candidate may take its Lease.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support.fake_kube import FakeKube

from overseer import errors
from overseer.core import leases
from overseer.operator import leadership

FAST = leases.Timing(duration=1.0, renew_deadline=0.5, retry_period=0.05)


class LeaseStore(FakeKube):
    """Leases in memory; ``down`` makes every call fail, as an unreachable API server."""

    def __init__(self) -> None:
        super().__init__()
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 0
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise errors.KubeError("the API server does not answer")

    def _store(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        self.leases[stored["metadata"]["namespace"], stored["metadata"]["name"]] = stored
        return stored

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self._check()
        assert kind == "Lease"
        return self.leases.get((namespace, name))

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        self._check()
        meta = body["metadata"]
        if (meta["namespace"], meta["name"]) in self.leases:
            return None
        return self._store(body)

    async def replace(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        self._check()
        meta = body["metadata"]
        current = self.leases.get((meta["namespace"], meta["name"]))
        if current is None or current["metadata"]["resourceVersion"] != meta["resourceVersion"]:
            return None
        return self._store(body)


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_a_candidate_creates_renews_takes_over_or_waits() -> None:
    held = leases.Record("b", 15.0, "t", "t", 0, "7")
    assert leases.plan_step(None, "a", unchanged_for=0) is leases.Step.CREATE
    assert leases.plan_step(held, "b", unchanged_for=99) is leases.Step.RENEW
    assert leases.plan_step(held, "a", unchanged_for=14.9) is leases.Step.WAIT
    assert leases.plan_step(held, "a", unchanged_for=15.0) is leases.Step.TAKE
    released = leases.Record("", 1.0, "t", "t", 3, "8")
    assert leases.plan_step(released, "a", unchanged_for=0) is leases.Step.TAKE


def test_a_lease_taken_over_counts_a_transition_and_a_renewal_does_not() -> None:
    now = datetime(2026, 12, 6, 7, 30, 1, 250000, tzinfo=UTC)
    held = leases.Record("b", 15.0, "x", "2026-12-06T07:00:00.000000Z", 2, "7")
    taken = leases.build_lease("ns", "l", "a", duration=15, now=now, previous=held)
    assert taken["spec"] == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-12-06T07:30:01.250000Z",
        "renewTime": "2026-12-06T07:30:01.250000Z",
        "leaseTransitions": 3,
    }
    assert taken["metadata"]["resourceVersion"] == "7"
    renewed = leases.build_lease("ns", "l", "b", duration=15, now=now, previous=held)["spec"]
    assert (renewed["leaseTransitions"], renewed["acquireTime"]) == (2, held.acquire_time)
    released = leases.build_lease("ns", "l", "", duration=1, now=now, previous=held)["spec"]
    assert (released["holderIdentity"], released["leaseTransitions"]) == ("", 2)


def test_timings_must_leave_the_leader_time_to_stop_before_a_takeover() -> None:
    with pytest.raises(ValueError, match="renew deadline < lease duration"):
        leases.Timing(duration=10, renew_deadline=10, retry_period=2)


async def test_one_of_two_candidates_leads_and_the_other_is_fenced() -> None:
    store = LeaseStore()
    first = leadership.Elector(store, [("ns", "l")], "first", FAST)
    second = leadership.Elector(store, [("ns", "l")], "second", FAST)
    stop = asyncio.Event()
    assert await first.acquire(stop)
    waiting = asyncio.create_task(second.acquire(stop))
    renewing = asyncio.create_task(first.renew())
    await asyncio.sleep(FAST.duration * 3)  # renewed all along: never taken over
    assert first.leading and not waiting.done()
    first.fence()
    with pytest.raises(errors.NotLeaderError):
        second.fence()
    # When the leader releases its Lease, the other takes it at once
    await stopped(renewing)
    await first.release()
    released = time.monotonic()
    assert await asyncio.wait_for(waiting, 1.0)
    assert time.monotonic() - released < FAST.duration / 2
    assert store.leases["ns", "l"]["spec"]["leaseTransitions"] == 1
    with pytest.raises(errors.NotLeaderError):
        first.fence()


async def test_a_leader_that_cannot_renew_stops_before_anyone_may_take_over() -> None:
    store = LeaseStore()
    leader = leadership.Elector(store, [("ns", "l")], "leader", FAST)
    standby = leadership.Elector(store, [("ns", "l")], "standby", FAST)
    stop = asyncio.Event()
    assert await leader.acquire(stop)
    waiting = asyncio.create_task(standby.acquire(stop))
    await asyncio.sleep(0.2)
    # When the leader's renewals stop reaching the API server (the standby's still do)
    fenced_at: list[float] = []

    async def watch_leader() -> None:
        await leader.expired()
        fenced_at.append(time.monotonic())

    watching = asyncio.create_task(watch_leader())
    renewing = asyncio.create_task(leader.renew())
    real_replace = store.replace

    async def refuse_the_leader(body: Mapping[str, Any]) -> dict[str, Any] | None:
        if body["spec"]["holderIdentity"] == "leader":
            raise errors.KubeError("timed out")
        return await real_replace(body)

    store.replace = refuse_the_leader  # type: ignore[method-assign]
    assert await asyncio.wait_for(waiting, FAST.duration * 4)
    taken_at = time.monotonic()
    # Then the leader had stopped first (the margin between the two timings is 0.5 s)
    with pytest.raises(errors.NotLeaderError):
        leader.fence()
    assert fenced_at, "the leader still acted when the standby took over"
    assert fenced_at[0] < taken_at
    standby.fence()
    await stopped(renewing)
    await stopped(watching)


async def test_overlapping_namespace_lists_never_deadlock() -> None:
    store = LeaseStore()
    wide = leadership.Elector(store, [("b", "l"), ("a", "l")], "wide", FAST)
    narrow = leadership.Elector(store, [("b", "l")], "narrow", FAST)
    stop = asyncio.Event()
    assert await narrow.acquire(stop)
    renewing = asyncio.create_task(narrow.renew())
    # The wide one takes "a" (first in order), then waits for "b": it does not lead
    waiting = asyncio.create_task(wide.acquire(stop))
    await asyncio.sleep(FAST.duration * 2)
    assert not waiting.done() and not wide.leading
    assert store.leases["a", "l"]["spec"]["holderIdentity"] == "wide"
    await stopped(renewing)
    await narrow.release()
    assert await asyncio.wait_for(waiting, 1.0)
    stop.set()


async def test_renewing_starts_no_task_of_its_own() -> None:
    """kopf runs while the leases are renewed, and when it stops it re-raises the error
    of every task started during its run: a renewal attempt in a task of its own (as
    asyncio.wait_for makes) that failed during an API server outage made the operator
    exit ("the operator failed", seen in make chaos) instead of standing by."""
    store = LeaseStore()
    elector = leadership.Elector(store, [("ns", "l")], "only", FAST)
    assert await elector.acquire(asyncio.Event())
    tasks_seen: set[asyncio.Task[Any] | None] = set()
    read = store.get

    async def get(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        tasks_seen.add(asyncio.current_task())
        return await read(kind, namespace, name)

    store.get = get  # type: ignore[method-assign]
    renewing = asyncio.create_task(elector.renew())
    await asyncio.sleep(FAST.retry_period * 4)
    await stopped(renewing)
    assert tasks_seen == {renewing}
