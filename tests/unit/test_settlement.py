"""An execution is settled once it has ended, its output is archived and it owes no
delivery; the operator labels it then (once, guarded by its version), and the label goes
when it owes a delivery again."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support import fake_kube
from tests.unit.test_execution_status_writes import Observed, observing

from overseer import errors
from overseer.core import delivery_records, settlement
from overseer.crd import execution
from overseer.operator import context, executions, settling, write_gate

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
A = "https://a.example.com/hook"
HOOKS = {"definition": {"name": "Deploy", "hooks": {"complete": A}}}


def body(
    phase: str | None = "Complete",
    archive: str | None = "Complete",
    *,
    hooks: bool = False,
    delivery: str | None = None,
    labelled: bool = False,
    name: str = "deploy-1",
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
        status["events"] = [{"id": "complete", "status": "complete", "time": T0.isoformat()}]
    if archive:
        status["archive"] = {"state": archive}
    if delivery:
        record = execution.Delivery(event_id="complete", url=A, status=delivery, attempts=1)
        status["deliveries"] = [record.model_dump(mode="json", by_alias=True)]
    metadata: dict[str, Any] = {"namespace": "ns", "name": name, "resourceVersion": "42"}
    if labelled:
        metadata["labels"] = {settlement.SETTLED_LABEL: "true"}
    return {"metadata": metadata, "spec": HOOKS if hooks else {}, "status": status}


@pytest.mark.parametrize(
    ("execution_body", "settled"),
    [
        (body(), True),
        (body(archive=None), True),  # nothing to archive (never ran)
        (body(archive="Incomplete"), True),  # what was lost is recorded; nothing to read
        (body(phase="Failed"), True),
        (body(phase="Killed", archive=None), True),
        (body(phase="Running"), False),
        (body(phase="Pending", archive=None), False),
        (body(phase=None, archive=None), False),
        (body(archive="Archiving"), False),  # the log is still being read
        (body(hooks=True), False),  # the complete event owes its delivery
        (body(hooks=True, delivery="Pending"), False),  # being retried
        (body(hooks=True, delivery="Delivered"), True),
        (body(hooks=True, delivery="GivenUp"), True),
        (body(hooks=True, delivery="Failed"), True),
        (body(hooks=True, delivery="Gone"), True),
    ],
)
def test_settled_means_ended_archived_and_owing_nothing(
    execution_body: dict[str, Any], settled: bool
) -> None:
    assert settlement.is_settled(execution_body) is settled
    patch = settlement.plan_label(execution_body)
    if settled:
        assert patch == {
            "metadata": {"labels": {settlement.SETTLED_LABEL: "true"}, "resourceVersion": "42"}
        }
    else:
        assert patch is None


def test_a_status_that_cannot_be_read_is_not_settled() -> None:
    unreadable = body(hooks=True)
    unreadable["status"]["deliveries"] = [{"eventId": "complete", "status": "Nonsense"}]
    assert not settlement.is_settled(unreadable)


def test_a_labelled_execution_is_not_labelled_again_and_its_label_goes_when_it_owes() -> None:
    assert settlement.plan_label(body(labelled=True)) is None
    assert not settlement.needs_unlabel(body(labelled=True))
    assert not settlement.needs_unlabel(body(hooks=True))  # not labelled: in the watch
    # a replay resets the delivery to Pending: it owes again, the label must go
    replayed = body(hooks=True, delivery="Delivered", labelled=True)
    records = [execution.Delivery.model_validate(d) for d in replayed["status"]["deliveries"]]
    reset = delivery_records.replay(records, delivery_records.delivery_id(records[0]), T0)
    replayed["status"]["deliveries"] = [d.model_dump(mode="json", by_alias=True) for d in reset]
    assert settlement.needs_unlabel(replayed)
    assert settlement.UNSETTLE == {"metadata": {"labels": {settlement.SETTLED_LABEL: None}}}
    assert settlement.WATCH_SELECTOR == "!overseer.dev/settled"


class Labels(fake_kube.FakeKube):
    """Answers label patches from a script: each a status to fail with, or None for OK."""

    def __init__(self, answers: list[int | None] | None = None) -> None:
        super().__init__()
        self.answers = list(answers or [])
        self.patches: list[tuple[str, Mapping[str, Any]]] = []

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        assert kind == execution.KIND.kind
        self.patches.append((name, patch))
        failure = self.answers.pop(0) if self.answers else None
        if failure is not None:
            raise errors.KubeError(f"answered {failure}", status=failure)
        return {}


def settler(client: Labels) -> settling.Settler:
    return settling.Settler(client, write_gate.WriteGate(2), retry_min=0.01, retry_max=0.02)


async def drain(settler: settling.Settler) -> None:
    for _ in range(200):
        await asyncio.sleep(0.005)
        if not settler.pending:
            await asyncio.sleep(0.01)
            return


async def test_the_settler_labels_each_settled_execution_once_with_its_version() -> None:
    client = Labels()
    labels = settler(client)
    labels.notice(body(name="a"))
    labels.notice(body(name="a"))  # the same execution again before the write: one patch
    labels.notice(body(phase="Running", name="b"))  # not settled
    labels.notice(body(name="c", labelled=True))  # labelled already
    await drain(labels)
    assert client.patches == [("a", settlement.plan_label(body(name="a")))]
    await labels.close()


async def test_a_refused_label_is_dropped_and_a_failed_one_tried_again() -> None:
    client = Labels([409, 503])
    labels = settler(client)
    labels.notice(body(name="changed"))  # 409: changed since; the watch shows the newer
    labels.notice(body(name="flaky"))  # 503, then done
    await drain(labels)
    await asyncio.sleep(0.1)
    await drain(labels)
    assert [name for name, _ in client.patches] == ["changed", "flaky", "flaky"]
    await labels.close()


async def test_an_execution_that_changed_or_left_before_its_label_is_not_labelled() -> None:
    client = Labels()
    gate_holder = write_gate.WriteGate(1)
    labels = settling.Settler(client, gate_holder, retry_min=0.01, retry_max=0.02)
    async with gate_holder.slot(write_gate.SYNC):  # the writes wait behind a sync
        labels.notice(body(name="replayed"))
        labels.notice(body(name="replayed", hooks=True, delivery="Pending"))
        labels.notice(body(name="deleted"))
        labels.notice(body(name="deleted"), deleted=True)
        labels.notice(body(name="kept"))
        await asyncio.sleep(0.02)
        assert client.patches == []
    await drain(labels)
    assert [name for name, _ in client.patches] == ["kept"]
    assert settling.left_watch(body(labelled=True), deleted=True)
    assert not settling.left_watch(body(), deleted=True)
    await labels.close()


async def test_a_status_write_that_makes_a_labelled_execution_owe_takes_the_label_off() -> None:
    read = body(phase=None, archive=None, hooks=True, labelled=True)
    owing = body(hooks=True, labelled=True)  # its complete event owes a delivery
    client = Observed(read, answer=owing)
    await executions.hold_back(context.Key("ns", "deploy-1"), "Queued", "waits", observing(client))
    assert client.merge_patches == [settlement.UNSETTLE]


class NoticeOnAnswer(Labels):
    """Queues a watch event of the execution just as the write is answered, the way the
    watch brings the newer state of an execution whose label was refused (409)."""

    def __init__(self, labels: list[settling.Settler], answers: list[int | None]) -> None:
        super().__init__(answers)
        self.labels = labels

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        if len(self.patches) == 0:
            newer = body(name=name)
            newer["metadata"]["resourceVersion"] = "43"
            asyncio.get_running_loop().call_soon(self.labels[0].notice, newer)
        return await super().patch_merge(kind, namespace, name, patch)


async def test_an_event_seen_as_the_last_worker_ends_still_gets_its_label() -> None:
    # The worker ends (nothing queued) and its task is done, but its done callback, which
    # takes it out of the workers, runs a moment later: an event in between found the
    # worker still counted, started none, and its label waited for the next event (a
    # settled label never came back in make test).
    holder: list[settling.Settler] = []
    client = NoticeOnAnswer(holder, [409])
    labels = settler(client)
    holder.append(labels)
    labels.notice(body(name="signalled"))
    await drain(labels)
    assert [patch["metadata"]["resourceVersion"] for _, patch in client.patches] == ["42", "43"]
    assert labels.pending == 0
    await labels.close()
