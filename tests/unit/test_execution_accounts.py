"""The executions' ServiceAccount: one create per namespace and process, and again when
a Job has waited past the grace for a pod (someone deleted it by hand)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.support import fake_kube

from overseer.core import execution_account, execution_job, execution_phase
from overseer.crd import execution
from overseer.operator import context, execution_accounts, execution_inputs, executions
from overseer.operator.settings import Settings

T0 = datetime(2026, 12, 6, 16, 0, 0, tzinfo=UTC)
GRACE = 60.0
SA = "create ServiceAccount"


class ApiServer(fake_kube.FakeKube):
    """Creates as the API server answers them: made the first time, 409 (None) after."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: set[tuple[str, str, str]] = set()

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        kind, meta = str(body["kind"]), body["metadata"]
        self.writes[f"create {kind}"] += 1
        await asyncio.sleep(0)  # an answer takes a while: concurrent callers overlap
        key = (kind, str(meta["namespace"]), str(meta["name"]))
        if key in self.objects:
            return None
        self.objects.add(key)
        return dict(body)


def job(*, created: datetime = T0, status: dict[str, Any] | None = None) -> dict[str, Any]:
    created_at = created.isoformat().replace("+00:00", "Z")
    return {"metadata": {"name": "j", "creationTimestamp": created_at}, "status": status or {}}


def waiting(**observed: Any) -> execution_phase.Observed:
    return execution_phase.Observed(**{"job": job(), **observed})


# --- starting executions: the write count ----------------------------------------------


def start(name: str, namespace: str) -> dict[str, Any]:
    """An execution just created: no status yet."""
    return {"metadata": {"namespace": namespace, "name": name, "uid": f"uid-{name}"}}


async def test_starting_executions_creates_the_service_account_once_per_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given executions whose Job is all they make (the observation that follows is not
    # what is counted here)
    async def prepare(body: Mapping[str, Any], *_: Any) -> execution_inputs.Prepared:
        meta = body["metadata"]
        made = {"kind": "Job", "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
        return execution_inputs.Prepared([made])

    async def observe(*_: Any) -> None:
        return None

    monkeypatch.setattr(execution_inputs, "prepare", prepare)
    monkeypatch.setattr(executions, "observe_execution", observe)
    client = ApiServer()
    env = context.Environment(
        client=client, settings=Settings(), tracker=context.Tracker(), post_event=lambda *_: None
    )
    # When three start at once in team-a and two in team-b, then two more in team-a
    first = [start(f"a{i}", "team-a") for i in range(3)] + [start("b0", "team-b")]
    await asyncio.gather(*(executions.start_execution(b, env) for b in first))
    for body in (start("b1", "team-b"), start("a3", "team-a"), start("a4", "team-a")):
        await executions.start_execution(body, env)
    # Then every Job is created, and the ServiceAccount once per namespace
    assert client.writes["create Job"] == 7
    assert client.writes[SA] == 2
    assert ("ServiceAccount", "team-a", execution_account.NAME) in client.objects


async def test_a_namespace_forgotten_past_the_limit_costs_one_create_again() -> None:
    client, accounts = ApiServer(), execution_accounts.ExecutionAccounts(limit=2)
    for namespace in ("a", "b", "a", "c", "a", "b"):
        await accounts.ensure(client, namespace)
    # a, b, c made; b was the least recently used when c came, so it is made again (409)
    assert client.writes[SA] == 4


async def test_a_failed_create_is_not_remembered() -> None:
    class Refusing(ApiServer):
        async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
            self.writes[f"create {body['kind']}"] += 1
            raise RuntimeError("the API server is away")

    client, accounts = Refusing(), execution_accounts.ExecutionAccounts()
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await accounts.ensure(client, "a")
    assert client.writes[SA] == 2


# --- a Job waiting for its pod ---------------------------------------------------------


def clock(start: float = 0.0) -> tuple[list[float], Callable[[], float]]:
    now = [start]
    return now, lambda: now[0]


async def test_a_job_long_without_a_pod_gets_the_service_account_made_again() -> None:
    # Given a namespace whose ServiceAccount this process made (then deleted by hand)
    client = ApiServer()
    now, monotonic = clock()
    accounts = execution_accounts.ExecutionAccounts(clock=monotonic)
    await accounts.ensure(client, "ns")
    client.objects.clear()
    # When its Job has waited 10 s for a pod: nothing made, look again at the grace's end
    seconds = timedelta(seconds=1)
    again = await accounts.check(client, "ns", waiting(), GRACE, now=T0 + 10 * seconds)
    assert (again, client.writes[SA]) == (T0 + 60 * seconds, 1)
    # When it has waited past the grace: made again, and looked at once more a grace later
    now[0] = 70.0
    again = await accounts.check(client, "ns", waiting(), GRACE, now=T0 + 61 * seconds)
    assert (again, client.writes[SA]) == (T0 + 121 * seconds, 2)
    assert ("ServiceAccount", "ns", execution_account.NAME) in client.objects
    # When another Job of the namespace waits as long, within that grace: not made again
    now[0] = 71.0
    await accounts.check(client, "ns", waiting(), GRACE, now=T0 + 62 * seconds)
    assert client.writes[SA] == 2
    # When the pod is there: nothing to look at again for it
    pod = {"metadata": {"name": "p"}}
    assert await accounts.check(client, "ns", waiting(pod=pod), GRACE, now=T0) is None
    assert client.writes[SA] == 2


@pytest.mark.parametrize(
    ("observed", "since"),
    [
        (waiting(), T0),
        (execution_phase.Observed(job=None), None),
        (waiting(pod={"metadata": {"name": "p"}}), None),
        (waiting(pod_name="p", pod_gone=True), None),
        (waiting(job=job(status={"active": 1})), None),
        (waiting(job=job(status={"failed": 1})), None),
        (waiting(job=job(status={"conditions": [{"type": "Complete", "status": "True"}]})), None),
        (waiting(job=job(status={"conditions": [{"type": "Suspended", "status": "False"}]})), T0),
    ],
    ids=["none-yet", "no-job", "pod", "pod-gone", "active", "failed", "complete", "resumed"],
)
def test_a_job_waits_for_a_pod_only_while_it_never_had_one(
    observed: execution_phase.Observed, since: datetime | None
) -> None:
    assert execution_account.waiting_for_pod_since(observed) == since


# --- the observation: no extra call while pods come as they should ---------------------


class Observing(fake_kube.FakeKube):
    """One execution with its Job, and the pods the Job controller made so far; any
    create (of the ServiceAccount) is unplanned, so it fails the test."""

    def __init__(self) -> None:
        super().__init__()
        spec = {
            "job": "nap-0123456789",
            "executionId": "1795938121.109918",
            "trigger": {"type": "api"},
            "definition": {"name": "Nap", "command": "true"},
            "commit": "abc",
        }
        meta = {"namespace": "ns", "name": "nap-1", "uid": "uid-1"}
        self.execution: dict[str, Any] = {"metadata": meta, "spec": spec, "status": {}}
        owner = {"kind": execution.KIND.kind, "name": "nap-1", "uid": "uid-1"}
        self.job = job(created=datetime.now(UTC))
        self.job["metadata"].update(name=execution_job.job_name("nap-1"), ownerReferences=[owner])
        self.pods: list[dict[str, Any]] = []

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return {execution.KIND.kind: self.execution, "Job": self.job}.get(kind)

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        assert kind == "Pod"
        for pod in self.pods:
            yield pod

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        self.execution = {**self.execution, "status": dict(status)}
        return self.execution


class Rechecks(context.Tracker):
    """The tracker, recording the re-checks planned and cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.planned: list[float] = []
        self.cancelled = 0

    def recheck(self, key: context.Key, delay: float, run: Any) -> None:
        self.planned.append(delay)
        super().recheck(key, delay, run)

    def cancel(self, key: context.Key) -> None:
        self.cancelled += 1
        super().cancel(key)


async def test_a_pod_in_time_leaves_no_recheck_and_no_create() -> None:
    client, tracker = Observing(), Rechecks()
    env = context.Environment(
        client=client, settings=Settings(), tracker=tracker, post_event=lambda *_: None
    )
    key = context.Key("ns", "nap-1")
    # When the Job is observed just made, with no pod yet: look again at the grace's end
    await executions.observe_execution(key, env)
    assert len(tracker.planned) == 1 and GRACE - 5 < tracker.planned[0] <= GRACE + 1
    # When its pod has come: that look is cancelled (no observation more to pay for)
    pod_meta = {"name": "nap-1-x", "uid": "p", "creationTimestamp": "2026-12-06T16:00:00Z"}
    controller = {"kind": "Job", "name": client.job["metadata"]["name"], "controller": True}
    client.pods.append({"metadata": {**pod_meta, "ownerReferences": [controller]}})
    cancelled = tracker.cancelled
    await executions.observe_execution(key, env)
    assert len(tracker.planned) == 1 and tracker.cancelled > cancelled
    tracker.close()
