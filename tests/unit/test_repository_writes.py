"""The sync's writes against the one fake client: a bounded number in flight, each body
sent as encoded JSON, a write refused for now sent again, a real refusal reported."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tests.support import fake_kube

from overseer import errors
from overseer.core import sync, write_pacing
from overseer.operator import repository_writes, write_gate

NAMESPACE = "ns"
FAST = write_pacing.RetryPolicy(first=0.001, ceiling=0.01, jitter=0.0, attempts=4)


def plan(count: int, deletes: int = 0) -> sync.Plan:
    writes = tuple(
        sync.Write(
            f"job-{n}",
            {"kind": "OverseerJob", "metadata": {"name": f"job-{n}"}, "spec": {"n": n}},
        )
        for n in range(count)
    )
    return sync.Plan(create=writes, delete=tuple(f"old-{n}" for n in range(deletes)))


class FakeKube(fake_kube.FakeKube):
    """Records applies (decoded) and deletions; fails the first ``refusals`` applies."""

    def __init__(self, refusals: list[errors.KubeError] | None = None) -> None:
        super().__init__()
        self.applied: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.refusals = list(refusals or [])
        self.in_flight = self.most_in_flight = 0

    async def apply_encoded(
        self, kind: str, namespace: str, name: str, data: bytes, *, force: bool = True
    ) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            if self.refusals:
                raise self.refusals.pop(0)
            self.applied[name] = {"kind": kind, "namespace": namespace, **json.loads(data)}
        finally:
            self.in_flight -= 1

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        self.deleted.append(name)


async def test_every_write_is_made_with_no_more_in_flight_than_the_concurrency() -> None:
    client = FakeKube()
    await repository_writes.carry_out(
        plan(50, deletes=5), NAMESPACE, client, frozenset(), concurrency=3
    )
    assert sorted(client.applied) == sorted(f"job-{n}" for n in range(50))
    assert client.applied["job-7"]["metadata"] == {"name": "job-7", "namespace": NAMESPACE}
    assert client.applied["job-7"]["spec"] == {"n": 7}
    assert sorted(client.deleted) == [f"old-{n}" for n in range(5)]
    assert client.most_in_flight == 3


async def test_the_gate_bounds_the_writes_of_two_syncs_together() -> None:
    client = FakeKube()
    gate = write_gate.WriteGate(4)
    await asyncio.gather(
        repository_writes.carry_out(
            plan(30), NAMESPACE, client, frozenset(), concurrency=4, gate=gate
        ),
        repository_writes.carry_out(
            plan(30), "other", client, frozenset(), concurrency=4, gate=gate
        ),
    )
    assert client.most_in_flight == 4


@pytest.mark.parametrize("status", [429, 503, None])
async def test_a_write_refused_for_now_is_sent_again(status: int | None) -> None:
    refusals = [errors.KubeError("busy", status), errors.KubeError("busy", status)]
    client = FakeKube(refusals)
    await repository_writes.carry_out(plan(1), NAMESPACE, client, frozenset(), retry=FAST)
    assert list(client.applied) == ["job-0"]


async def test_a_write_refused_for_good_fails_the_sync_at_once() -> None:
    client = FakeKube([errors.KubeInvalidObjectError("invalid", 422)])
    with pytest.raises(ExceptionGroup) as raised:
        await repository_writes.carry_out(plan(1), NAMESPACE, client, frozenset(), retry=FAST)
    assert [type(e) for e in raised.value.exceptions] == [errors.KubeInvalidObjectError]
    assert client.applied == {}


async def test_a_write_refused_too_often_fails_the_sync() -> None:
    client = FakeKube([errors.KubeError("busy", 429) for _ in range(10)])
    with pytest.raises(ExceptionGroup) as raised:
        await repository_writes.carry_out(plan(1), NAMESPACE, client, frozenset(), retry=FAST)
    assert [getattr(e, "status", None) for e in raised.value.exceptions] == [429]
    assert len(client.refusals) == 10 - FAST.attempts


async def test_an_operator_that_lost_its_lease_never_sends_again() -> None:
    client = FakeKube([errors.NotLeaderError("not the leader")])
    with pytest.raises(ExceptionGroup) as raised:
        await repository_writes.carry_out(plan(1), NAMESPACE, client, frozenset(), retry=FAST)
    assert [type(e) for e in raised.value.exceptions] == [errors.NotLeaderError]
    assert client.applied == {}
