"""What the API changes in the cluster: executions, activation, signals, each audited.

:func:`create_execution` is the one function that creates an execution (POST
/jobs/{name}, repeats; the Idempotency-Key layer wraps it). It checks first, with the
operator's own code, everything the operator would refuse: an inactive job, the
parameters (``execution_command.plan``), a definition that cannot run
(``execution_job.check_runnable``), and a ``forbid`` concurrency that the cache shows
full (``concurrency.plan_admission``; the operator's admission stays the authority).
Secret parameters never reach the execution's spec: their values go into a Secret the
execution owns (``execution_resource.build_secret_parameters``), created right after it;
a repeat reads them back from the repeated execution's.
Every write's response goes into the cache, so a client reads its own write, and a
Kubernetes Event says who did it (best effort: a refused Event never fails the write).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import pydantic

from overseer import errors
from overseer.core import audit, concurrency, execution_command, execution_job, names, signals
from overseer.core import execution_resource as builder
from overseer.crd import definition as defn
from overseer.crd import execution as execution_
from overseer.crd import job as job_
from overseer.crd import repository as repository_
from overseer_api import auth, cache, views

log = logging.getLogger(__name__)

Body = dict[str, Any]
MAX_ID_ATTEMPTS = 20
"""Ids tried, one microsecond apart, before giving up on a job flooded with creations."""


class Writer(Protocol):
    """What the actions need of :class:`overseer.kube.Kube`."""

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None: ...

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def patch_json(
        self, kind: str, namespace: str, name: str, operations: Any
    ) -> dict[str, Any]: ...

    def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]: ...


@dataclasses.dataclass(frozen=True)
class Launch:
    """What to execute: parameters, and for a repeat the execution it repeats."""

    parameters: Mapping[str, str]
    caller: auth.Caller
    repeat_of: Body | None = None
    """The execution repeated; its definition and commit too unless ``latest``."""
    latest: bool = False
    """For a repeat: run the job's current definition (``?revision=latest``)."""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Extra labels for the execution (the Idempotency-Key claim that made it)."""


class Ids:
    """Execution ids from the clock, never the same twice for one job in this process.

    Two POSTs in the same microsecond get ids one microsecond apart; another replica
    that took an id first makes the creation collide (409), and the next one is tried.
    """

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._last: dict[tuple[str, str], str] = {}
        self._clock = clock

    def next(self, namespace: str, job: str, taken: Mapping[str, Any]) -> str:
        """An id after the clock, after the last one given for this job, and not taken."""
        key = (namespace, job)
        candidate = names.execution_id(self._clock())
        last = self._last.get(key)
        if last is not None and views.id_key(candidate) <= views.id_key(last):
            candidate = names.next_execution_id(last)
        while candidate in taken:
            candidate = names.next_execution_id(candidate)
        self._last[key] = candidate
        return candidate


def _definition(raw: Mapping[str, Any]) -> defn.JobDefinition:
    try:
        return defn.JobDefinition.model_validate(raw)
    except pydantic.ValidationError as error:
        msg = f"the job's stored definition is not valid any more: {error}"
        raise errors.InvalidDefinitionError(msg) from None


def check_executable(
    store: cache.Cache, job: Body, definition: Mapping[str, Any], parameters: Mapping[str, str]
) -> execution_command.Plan:
    """Raise what the operator would refuse this execution for (see the module's doc)."""
    display = job["spec"]["displayName"]
    if not job["spec"].get("active", True):
        msg = f"job {display!r} is deactivated; reactivate it (PUT /jobs/{{name}}) to run it"
        raise errors.JobInactiveError(msg)
    model = _definition(definition)
    plan = execution_command.plan(model, parameters)
    problems = execution_job.check_runnable(model)
    if problems:
        raise errors.DefinitionNotRunnableError(problems)
    if model.concurrency is None or model.concurrency.policy != "forbid":
        return plan
    namespace = job["metadata"]["namespace"]
    scope = concurrency.scope_of({"job": job["metadata"]["name"], "definition": definition})
    members = [
        member
        for body in store.scope_executions(namespace, job["metadata"]["name"], model.concurrency)
        if (member := concurrency.member_from_body(body, job_exists=False)) is not None
    ]
    candidate = concurrency.Member("(new)", "9" * 20 + ".999999", False, model.concurrency)
    for decision in concurrency.plan_admission([*members, candidate], scope):
        if isinstance(decision, concurrency.Refuse) and decision.name == candidate.name:
            raise errors.ConcurrencyLimitError(f"{decision.message}; try again when one ends")
    return plan


async def create_execution(
    kube: Writer, store: cache.Cache, ids: Ids, job: Body, launch: Launch
) -> Body:
    """Check, then create the execution (see the module's doc); the object created."""
    namespace, job_name = job["metadata"]["namespace"], job["metadata"]["name"]
    old = launch.repeat_of
    if old is not None and not launch.latest:
        definition, commit = old["spec"]["definition"], old["spec"]["commit"]
    else:
        definition, commit = job["spec"]["definition"], await _commit(kube, job)
    parameters = dict(launch.parameters)
    kept = await _secret_values(kube, old) if old is not None else {}
    parameters.update(kept)
    plan = check_executable(store, job, definition, parameters)
    # A value kept secret stays so, even where a newer definition no longer says secret.
    hidden = {n: v for n, v in parameters.items() if plan.accepted[n].secret or n in kept}
    public = {n: v for n, v in parameters.items() if n not in hidden}
    trigger = execution_.Trigger(
        type="repeat" if old is not None else "api",
        repeat_of=old["spec"]["executionId"] if old is not None else None,
    )
    for _ in range(MAX_ID_ATTEMPTS):
        execution_id = ids.next(namespace, job_name, store.executions_of(namespace, job_name))
        body = builder.build_execution(
            job,
            execution_id,
            trigger=trigger,
            parameters=public,
            definition=definition,
            commit=commit,
            annotations={builder.CREATED_BY_ANNOTATION: launch.caller.name},
            labels=launch.labels,
            secret_names=sorted(hidden),
        )
        created = await kube.create(body)
        if created is not None:
            if hidden:
                await _store_secret_values(kube, created, hidden)
            store.put(created)
            what = "repeated" if old is not None else "executed"
            message = f"{what} job {job['spec']['displayName']!r}: execution {execution_id}"
            await record(kube, created, "Created", message, launch.caller)
            return created
    msg = f"no free execution id for job {job_name} after {MAX_ID_ATTEMPTS} tries; retry"
    raise errors.ConflictError(msg)


async def _secret_values(kube: Writer, execution: Body) -> dict[str, str]:
    """The secret parameters of ``execution`` (a repeat reuses them), from its own Secret."""
    reference = execution["spec"].get("secretParameters")
    if not reference:
        return {}
    namespace = execution["metadata"]["namespace"]
    secret = await kube.get("Secret", namespace, reference["secretName"])
    return builder.read_secret_parameters(execution, secret)


async def _store_secret_values(kube: Writer, execution: Body, values: Mapping[str, str]) -> None:
    """Create the Secret of ``execution``'s secret parameters, owned by it.

    Should that fail, the error is raised; the execution, which cannot run without it,
    fails by itself a minute later (the operator's ``SecretParametersUnavailable``).
    """
    made = await kube.create(builder.build_secret_parameters(execution, values))
    if made is None:
        name = execution["spec"]["secretParameters"]["secretName"]
        msg = f"a Secret named {name} exists already, so the execution cannot run"
        raise errors.ConflictError(f"{msg}; execute the job again")


async def _commit(kube: Writer, job: Body) -> str | None:
    """The repository's synced commit, whose ``bin/`` is surely kept (as the scheduler)."""
    source = job["spec"]["source"]
    repository = await kube.get(
        repository_.KIND.kind, job["metadata"]["namespace"], source["repository"]
    )
    return ((repository or {}).get("status") or {}).get("commit") or None


async def set_active(
    kube: Writer, store: cache.Cache, job: Body, active: bool, caller: auth.Caller
) -> Body:
    """Activate or deactivate a job: a merge patch of ``spec.active`` under the API's field
    manager, with who and when in annotations; nothing written when already so."""
    if bool(job["spec"].get("active", True)) == active:
        return job
    now = datetime.now(UTC)
    patch = {
        "metadata": {
            "annotations": {
                views.ACTIVE_BY_ANNOTATION: caller.name,
                views.ACTIVE_AT_ANNOTATION: now.isoformat().replace("+00:00", "Z"),
            }
        },
        "spec": {"active": active},
    }
    meta = job["metadata"]
    patched = await kube.patch_merge(job_.KIND.kind, meta["namespace"], meta["name"], patch)
    store.put(patched)
    verb = "activated" if active else "deactivated"
    reason = "Activated" if active else "Deactivated"
    await record(kube, patched, reason, f"{verb} job {job['spec']['displayName']!r}", caller)
    return patched


async def request_signal(
    kube: Writer, store: cache.Cache, execution: Body, text: str | None, caller: auth.Caller
) -> tuple[Body, int]:
    """Append a signal request to ``spec.signals``; the execution and the request's index."""
    phase = (execution.get("status") or {}).get("phase")
    eid = execution["spec"]["executionId"]
    if phase in execution_.TERMINAL_PHASES:
        msg = f"execution {eid} has ended ({phase}); there is no process left to signal"
        raise errors.ExecutionFinishedError(msg)
    request = signals.build_request(text, datetime.now(UTC), caller.name)
    value = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    meta = execution["metadata"]
    operations = [{"op": "add", "path": "/spec/signals/-", "value": value}]
    patched = await kube.patch_json(
        execution_.KIND.kind, meta["namespace"], meta["name"], operations
    )
    store.put(patched)
    message = f"requested {request.signal} for execution {eid}"
    await record(kube, patched, "SignalRequested", message, caller)
    return patched, len(patched["spec"].get("signals") or ()) - 1


async def record(
    kube: Writer, involved: Mapping[str, Any], reason: str, message: str, caller: auth.Caller
) -> None:
    """A Kubernetes Event about ``involved`` saying ``caller`` did it; a refusal is logged."""
    event = audit.build_event(involved, reason, message, who=caller.name, now=datetime.now(UTC))
    try:
        await kube.create(event)
    except errors.KubeError as error:
        log.warning("could not record the Event %s: %s", reason, error.message)
