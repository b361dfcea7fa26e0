"""The admission reaction: what it reads, and which reaction it calls for each decision."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
from tests.support import fake_kube

from overseer.crd import execution as execution_crd
from overseer.operator import admission, context, executions
from overseer.operator.settings import Settings

NS = "ns"
SCOPE = "job:nap-0123456789"
QUEUE = {"limit": 1, "policy": "queue"}
FORBID = {"limit": 1, "policy": "forbid"}
REPLACE = {"limit": 1, "policy": "replace"}


def body(
    name: str,
    seconds: int,
    limits: dict[str, Any] | None,
    status: dict[str, Any] | None = None,
    signals: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    definition: dict[str, Any] = {"name": "Nap", "command": "true"}
    if limits is not None:
        definition["concurrency"] = limits
    spec: dict[str, Any] = {
        "job": "nap-0123456789",
        "executionId": f"{seconds}.000000",
        "trigger": {"type": "api"},
        "definition": definition,
        "commit": "abc",
    }
    if signals is not None:
        spec["signals"] = signals
    return {"metadata": {"name": name, "namespace": NS}, "spec": spec, "status": status or {}}


class FakeKube(fake_kube.FakeKube):
    def __init__(
        self, *bodies: dict[str, Any], jobs: Iterable[str] = (), inactive: bool = False
    ) -> None:
        super().__init__()
        self.bodies = {b["metadata"]["name"]: b for b in bodies}
        self.jobs = set(jobs)
        self.inactive = inactive
        self.patches: list[tuple[str, list[dict[str, Any]]]] = []
        self.read: list[tuple[str, str]] = []

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        assert namespace == NS
        if kind == "OverseerJob":  # the start reads whether the job is active
            return {"metadata": {"name": name}, "spec": {"active": not self.inactive}}
        self.read.append((kind, name))
        if kind == "OverseerExecution":
            return self.bodies.get(name)
        assert kind == "Job"
        return {"metadata": {"name": name}} if name in self.jobs else None

    async def patch_json(
        self, kind: str, namespace: str, name: str, operations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        self.patches.append((name, [dict(operation) for operation in operations]))
        return dict(self.bodies.get(name) or {})  # the object after: unused by the admission


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The execution reactions the admission called: (what, execution name)."""
    seen: list[tuple[str, str]] = []

    async def start(body: dict[str, Any], env: Any) -> None:
        seen.append(("start", body["metadata"]["name"]))

    async def refuse(key: context.Key, reason: str, message: str, env: Any) -> None:
        seen.append((f"refuse {reason}", key.name))

    async def hold_back(key: context.Key, reason: str, message: str, env: Any) -> None:
        seen.append((f"wait {reason}", key.name))

    async def cancel(key: context.Key, reason: str, message: str, env: Any) -> None:
        seen.append((f"cancel {reason}", key.name))

    monkeypatch.setattr(executions, "start_execution", start)
    monkeypatch.setattr(executions, "refuse", refuse)
    monkeypatch.setattr(executions, "hold_back", hold_back)
    monkeypatch.setattr(executions, "cancel", cancel)
    return seen


def env(client: FakeKube) -> context.Environment:
    return context.Environment(
        client=client,
        settings=Settings(retry_min=0.1, retry_max=0.2),
        tracker=context.Tracker(),
        post_event=lambda *_: None,
    )


def index(*bodies: dict[str, Any]) -> admission.ScopeIndex:
    """What the kopf index holds for these bodies."""
    result: dict[admission.ScopeKey, list[admission.IndexEntry]] = {}
    for b in bodies:
        entry = admission.index_entry(NS, b["metadata"]["name"], b["spec"], b["status"])
        for key, value in (entry or {}).items():
            result.setdefault(key, []).append(value)
    return result


async def test_an_execution_without_a_limit_starts_without_reading_the_others(
    calls: list[tuple[str, str]],
) -> None:
    new = body("b", 2, None)
    client = FakeKube(body("a", 1, None, {"jobName": "a"}), new)
    await admission.Admission().admit(new, env(client), index(*client.bodies.values()))
    assert calls == [("start", "b")]
    assert client.read == []


@pytest.mark.parametrize("limits", [None, QUEUE, REPLACE])
async def test_an_execution_of_an_inactive_job_is_refused_and_never_queues_or_stops_one(
    calls: list[tuple[str, str]], limits: dict[str, Any] | None
) -> None:
    # Given a running execution and a deactivated job
    new = body("b", 2, limits)
    client = FakeKube(body("a", 1, limits, {"jobName": "a"}), new, jobs={"a"}, inactive=True)
    # When a new execution of it comes in (made by kubectl, the API or a repeat)
    await admission.Admission().admit(new, env(client), index(*client.bodies.values()))
    # Then it is refused, JobInactive, and nothing else happens: no start, no SIGTERM
    assert calls == [("refuse JobInactive", "b")]
    assert client.patches == []


async def test_one_more_than_the_limit_is_queued_then_started_when_the_first_ends(
    calls: list[tuple[str, str]],
) -> None:
    running = body("a", 1, QUEUE, {"phase": "Running", "jobName": "a"})
    new = body("b", 2, QUEUE)
    client = FakeKube(running, new)
    gate = admission.Admission()
    await gate.admit(new, env(client), index(running, new))
    assert calls == [("wait Queued", "b")]
    # When the first ends, the index drops it and the queued one starts
    client.bodies["a"] = body("a", 1, QUEUE, {"phase": "Complete", "jobName": "a"})
    client.bodies["b"]["status"] = {"phase": "Pending", "reason": "Queued", "message": "m"}
    await gate.pump((NS, SCOPE), env(client), index(*client.bodies.values()))
    assert calls[1:] == [("start", "b")]


async def test_an_execution_whose_job_exists_takes_a_slot_even_without_job_name(
    calls: list[tuple[str, str]],
) -> None:
    # Admitted by an operator that stopped before it recorded status.jobName
    orphan = body("a", 1, FORBID)
    new = body("b", 2, FORBID)
    client = FakeKube(orphan, new, jobs={"a"})
    await admission.Admission().admit(new, env(client), index(orphan, new))
    assert calls == [(f"refuse {execution_crd.CONCURRENCY_LIMIT}", "b")]
    assert ("Job", "a") in client.read


async def test_replace_appends_sigterm_to_the_running_one(
    calls: list[tuple[str, str]],
) -> None:
    running = body("a", 1, REPLACE, {"phase": "Running", "jobName": "a"}, signals=[])
    new = body("b", 2, REPLACE)
    client = FakeKube(running, new)
    await admission.Admission().admit(new, env(client), index(running, new))
    assert calls == [("wait Replacing", "b")]
    [(name, [operation])] = client.patches
    assert name == "a"
    assert operation["op"] == "add" and operation["path"] == "/spec/signals/-"
    assert operation["value"]["signal"] == "SIGTERM"
    assert "requestedAt" in operation["value"]


async def test_replace_creates_the_signal_list_when_there_is_none(
    calls: list[tuple[str, str]],
) -> None:
    running = body("a", 1, REPLACE, {"phase": "Running", "jobName": "a"})
    new = body("b", 2, REPLACE)
    client = FakeKube(running, new)
    await admission.Admission().admit(new, env(client), index(running, new))
    [(_, [operation])] = client.patches
    assert operation["path"] == "/spec/signals"
    assert [s["signal"] for s in operation["value"]] == ["SIGTERM"]


async def test_an_end_pumps_only_when_something_waits(calls: list[tuple[str, str]]) -> None:
    ended = body("a", 1, QUEUE, {"phase": "Complete", "jobName": "a"})
    client = FakeKube(ended)
    gate = admission.Admission()
    gate.freed(NS, ended["spec"], env(client), index(ended))
    assert not gate._tasks  # nothing waits: no pump, no read
    assert client.read == []
    queued = body("b", 2, QUEUE, {"phase": "Pending", "reason": "Queued", "message": "m"})
    client.bodies["b"] = queued
    gate.freed(NS, ended["spec"], env(client), index(ended, queued))
    await asyncio.gather(*gate._tasks)
    assert calls == [("start", "b")]


def test_only_executions_without_a_job_need_admission() -> None:
    assert admission.needs_admission(body("a", 1, QUEUE))
    assert not admission.needs_admission(body("a", 1, QUEUE, {"jobName": "a"}))
    assert not admission.needs_admission(body("a", 1, QUEUE, {"phase": "Failed"}))
    assert admission.index_entry(NS, "a", body("a", 1, None)["spec"], {"phase": "Killed"}) is None
    assert admission.index_entry(NS, "a", body("a", 1, None)["spec"], {}) == {
        (NS, SCOPE): ("a", True)
    }


async def test_a_queued_execution_asked_to_stop_is_cancelled(
    calls: list[tuple[str, str]],
) -> None:
    running = body("a", 1, QUEUE, {"phase": "Running", "jobName": "a"})
    queued = body(
        "b",
        2,
        QUEUE,
        {"phase": "Pending", "reason": "Queued", "message": "m"},
        signals=[{"signal": "SIGTERM", "requestedAt": "2026-11-29T10:00:00Z"}],
    )
    client = FakeKube(running, queued)
    gate = admission.Admission()
    # A change of the running one (not its end) pumps nothing
    gate.noticed(None, NS, running["spec"], running["status"], env=env(client), index=index())
    assert not gate._tasks
    # The stop request on the queued one does
    gate.noticed(
        None, NS, queued["spec"], queued["status"], env=env(client), index=index(running, queued)
    )
    await asyncio.gather(*gate._tasks)
    assert calls == [("cancel Cancelled", "b")]


async def test_an_observation_leaves_a_held_back_execution_alone() -> None:
    queued = body("b", 2, QUEUE, {"phase": "Pending", "reason": "Queued", "message": "m"})
    client = FakeKube(queued)
    # FakeKube has no patch_status: a write would fail the test
    await executions.observe_execution(context.Key(NS, "b"), env(client))
    assert client.read == [("OverseerExecution", "b"), ("Job", "b")]
