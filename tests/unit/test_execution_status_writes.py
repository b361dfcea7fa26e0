"""The observe path's status writes leave ``status.deliveries`` to their own writers:
the delivery lanes and the API's replay (a status read before a replay must not undo it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tests.support import fake_kube

from overseer.crd import execution
from overseer.operator import context, executions
from overseer.operator.settings import Settings

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
A = "https://a.example.com/hook"


def body(delivery: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if delivery:
        record = execution.Delivery(event_id="complete", url=A, status=delivery, attempts=1)
        status["deliveries"] = [record.model_dump(mode="json", by_alias=True)]
    spec = {"definition": {"name": "Deploy", "hooks": {"complete": A}}}
    return {"metadata": {"namespace": "ns", "name": "deploy-1"}, "spec": spec, "status": status}


class Observed(fake_kube.FakeKube):
    """One execution, as the observe path reads and writes it."""

    def __init__(self, execution: dict[str, Any], answer: dict[str, Any]) -> None:
        super().__init__()
        self.execution = execution
        self.answer = answer
        self.status_patches: list[Mapping[str, Any]] = []
        self.merge_patches: list[Mapping[str, Any]] = []

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind == "OverseerJob":
            return None  # the phase is reported on the job: gone here
        assert kind == execution.KIND.kind
        return self.execution

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        self.status_patches.append(status)
        return self.answer

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.merge_patches.append(patch)
        return self.answer


def observing(client: Observed) -> context.Environment:
    return context.Environment(
        client=client, settings=Settings(), tracker=context.Tracker(), post_event=lambda *_: None
    )


async def test_a_status_write_never_carries_the_deliveries_a_replay_may_have_reset() -> None:
    # Given an execution read before a replay reset its delivery (read: Delivered)
    read = body(delivery="Delivered")
    client = Observed(read, answer=body())
    # When the observe path writes its status
    await executions.hold_back(context.Key("ns", "deploy-1"), "Queued", "waits", observing(client))
    # Then the patch leaves the deliveries to their own writers
    [written] = client.status_patches
    assert written["reason"] == "Queued" and "deliveries" not in written
    assert client.merge_patches == []
