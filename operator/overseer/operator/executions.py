"""Executions: an OverseerExecution becomes a batch/v1 Job, and its status follows the pod.

Two reactions, both idempotent, so kopf may call them again at any time:

- :func:`start_execution` (on create, and on resume after an operator restart) builds
  the parameters Secret and the Job with :mod:`overseer.core.execution_job` and creates
  them. Both are named after the execution: a second call finds them (409) and, when
  their owner is this execution's uid (an earlier execution's of the name, or anything
  else's, is never adopted), creates nothing; once ``status.jobName`` is recorded no
  call creates anything again (a Job deleted by hand is not replaced). A definition or
  parameters that cannot run fail the execution at once, with a ``fail`` event and a
  Warning Event, and no Job.
- :func:`observe_execution` (on every event of the execution's Job or pods, at the
  ``recheck_at`` a derivation asks for, and right after the start) reads the execution,
  its Job and its newest pod, derives the phase with
  :mod:`overseer.core.execution_phase`, and writes the status, and the OverseerJob's
  ``lastExecution``/``lastStatus`` (:mod:`.last_execution`), only when they differ.
  A Job long without a pod gets its namespace's ServiceAccount made again
  (:mod:`.execution_accounts`).

While the job's container runs, the ``output`` hook follows its log (archiving stdout and
stderr) and hands the frames it decoded to each observation, so custom events become
status events (see :mod:`overseer.operator.output`). An end the pod status shows before
the log is read waits for it, so that the events go before the end.

Observations of one execution are serialised by a lock (in this process) and re-read
the execution under it, so two events never fold into the same stale status. Nothing
lives only in memory: after a restart kopf lists the pods and Jobs again (an event
each) and resumes every execution, and each derives from what the cluster shows.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic

from overseer import errors
from overseer.core import (
    backoff,
    execution_job,
    execution_observed,
    execution_phase,
    execution_status,
    settlement,
)
from overseer.crd import base
from overseer.crd import execution as execution_
from overseer.operator import collect, execution_inputs, last_execution, metrics
from overseer.operator.context import Environment, Key

log = logging.getLogger(__name__)


# --- starting --------------------------------------------------------------------------


async def start_execution(body: Mapping[str, Any], env: Environment) -> None:
    """Create the Secret and the Job of a new or resumed execution; then observe it.

    Raises :class:`overseer.errors.KubeError` (waiting) when the API server fails: the
    caller retries, which is safe.
    """
    key = Key(body["metadata"]["namespace"], body["metadata"]["name"])
    status = body.get("status") or {}
    if status.get("phase") in execution_.TERMINAL_PHASES:
        return
    if not status.get("jobName"):
        objects = await _build(key, body, env)
        if objects is None or not await _create_all(key, body, objects, env):
            return
    await observe_execution(key, env)


async def _build(
    key: Key, body: Mapping[str, Any], env: Environment
) -> list[dict[str, Any]] | None:
    """The execution's parameters Secret (if any) and Job; None when it was refused."""
    prepared = await execution_inputs.prepare(body, env.client, env.settings.job_settings)
    if prepared.refusal is not None:
        await _refuse(key, *prepared.refusal, env)
        return None
    return prepared.objects


async def _create_all(
    key: Key, body: Mapping[str, Any], objects: list[dict[str, Any]], env: Environment
) -> bool:
    """Create the execution's objects in order; False when the execution was refused.

    First the pod's ServiceAccount, shared by the namespace's executions: made once per
    namespace and process, never read (:mod:`overseer.operator.execution_accounts`).
    """
    try:
        await env.accounts.ensure(env.client, key.namespace)
        for made in objects:
            if not await _create_own(key, body, made, env):
                return False
    except errors.KubeError as error:
        if not error.stalled:
            raise
        await _refuse(key, error.reason, error.message, env)
        return False
    return True


async def _create_own(
    key: Key, body: Mapping[str, Any], obj: Mapping[str, Any], env: Environment
) -> bool:
    """Create the execution's Secret or Job; False when the execution was refused. On a
    409 the owner's uid decides: this execution's is fine, an earlier one's of this name
    (awaiting the garbage collector) is waited for, anything else's is never adopted."""
    kind, name = str(obj["kind"]), str(obj["metadata"]["name"])
    if await env.client.create(obj) is not None:
        log.info("execution %s: created %s %s", key, kind, name)
        return True
    existing = await env.client.get(kind, key.namespace, name)
    if existing is None:
        raise errors.KubeError(f"{kind} {name} existed, then vanished: creating it again")
    owner = execution_observed.owner_of(existing, str(body["metadata"]["uid"]), key.name)
    if owner == "ours":
        return True
    if owner == "earlier":
        raise errors.KubeError(
            f"{kind} {name} belongs to an earlier execution of this name, deleted and "
            "awaiting the garbage collector: trying again"
        )
    message = (
        f"a {kind} named {name} exists in namespace {key.namespace} and is not this "
        f"execution's (its owner is not {execution_.KIND.kind} {key.name} with uid "
        f"{body['metadata']['uid']}): it is never adopted; delete it, or run the job again"
    )
    await _refuse(key, execution_.JOB_NAME_TAKEN, message, env)
    return False


async def refuse_if_inactive(body: Mapping[str, Any], env: Environment) -> bool:
    """Refuse (Failed, ``JobInactive``, no Job) an execution of a deactivated job.

    However the execution was made (the scheduler, the API, a repeat, kubectl), its job
    must be active (:func:`execution_inputs.inactive_message`). True when it was refused.
    """
    message = await execution_inputs.inactive_message(body, env.client)
    if message is None:
        return False
    key = Key(body["metadata"]["namespace"], body["metadata"]["name"])
    log.info("execution %s: refused: %s", key, message)
    await refuse(key, execution_.JOB_INACTIVE, message, env)
    return True


async def _refuse(key: Key, reason: str, message: str, env: Environment) -> None:
    """End an execution that cannot run: Failed with a ``fail`` event, nothing created."""
    await _end_unstarted(key, "Failed", reason, message, env)


async def _end_unstarted(
    key: Key,
    phase: execution_.Phase,
    reason: str,
    message: str,
    env: Environment,
    *,
    unless_started: bool = False,
) -> None:
    """Record the end of an execution that never ran: ``phase`` with a ``fail`` event.

    ``unless_started``: leave it alone when it has a Job by now (it runs after all).
    """
    now = datetime.now(UTC)
    event = execution_.Event(
        id=execution_phase.FAIL, status=execution_phase.FAIL, time=now, data={"reason": reason}
    )
    derived = execution_phase.Derived(phase, reason, message, completion_time=now, events=(event,))
    async with env.tracker.hold(key):
        body = await env.client.get(execution_.KIND.kind, key.namespace, key.name)
        if body is None or (unless_started and (body.get("status") or {}).get("jobName")):
            return
        await _record(key, body, derived, None, env)


# --- concurrency: what the admission (overseer.operator.admission) does to an execution --


async def refuse(key: Key, reason: str, message: str, env: Environment) -> None:
    """End an execution that may not run (its concurrency limit, its job deactivated):
    Failed, no Job."""
    await _refuse(key, reason, message, env)


async def cancel(key: Key, reason: str, message: str, env: Environment) -> None:
    """End an execution stopped on request before it started: Killed, no Job."""
    await _end_unstarted(key, "Killed", reason, message, env, unless_started=True)


async def hold_back(key: Key, reason: str, message: str, env: Environment) -> None:
    """Keep an execution that has no Job yet Pending, saying why (Queued, Replacing)."""
    derived = execution_phase.Derived("Pending", reason, message)
    async with env.tracker.hold(key):
        body = await env.client.get(execution_.KIND.kind, key.namespace, key.name)
        if body is not None and not (body.get("status") or {}).get("jobName"):
            await _record(key, body, derived, None, env)


# --- observing -------------------------------------------------------------------------


async def observe_execution(
    key: Key,
    env: Environment,
    *,
    pod: Mapping[str, Any] | None = None,
    pod_deleted: bool = False,
) -> None:
    """Derive the execution's phase from its Job and newest pod; write what changed.

    ``pod`` is the pod an event was about (its last state when ``pod_deleted``). API
    failures are logged and the observation is tried again later, with backoff.
    """
    try:
        async with env.tracker.hold(key):
            await _observe(key, env, pod, pod_deleted)
    except errors.KubeError as error:
        delay = backoff.delay(
            env.tracker.failed(key),
            first=env.settings.retry_min,
            ceiling=env.settings.retry_max,
        )
        log.warning("execution %s: %s; looking again in %.0fs", key, error.message, delay)
        env.tracker.recheck(key, delay, lambda: observe_execution(key, env))
    else:
        env.tracker.succeeded(key)


async def _observe(
    key: Key, env: Environment, event_pod: Mapping[str, Any] | None, pod_deleted: bool
) -> None:
    body = await env.client.get(execution_.KIND.kind, key.namespace, key.name)
    if body is None:
        env.tracker.cancel(key)
        env.output.forget(key)
        return
    try:
        spec = execution_.ExecutionSpec.model_validate(body["spec"])
    except pydantic.ValidationError:
        return  # start_execution refuses it
    previous = _status(body)
    job = await env.client.get("Job", key.namespace, execution_job.job_name(key.name))
    uid = str(body["metadata"].get("uid") or "")
    if job is not None and execution_observed.owner_of(job, uid, key.name) != "ours":
        job = None  # an earlier execution's of this name, or something else's: not ours
    # --- concurrency: an execution the admission holds back has no Job to observe yet ---
    if job is None and previous.job_name is None and previous.reason in execution_.HELD_BACK:
        return
    pods = [
        p
        async for p in env.client.list(
            "Pod", key.namespace, {execution_job.EXECUTION_LABEL: key.name}
        )
    ]
    observed = execution_observed.build_observed(
        key.name, job, pods, event_pod, pod_deleted=pod_deleted, previous=previous, uid=uid
    )
    observed = dataclasses.replace(observed, signals=tuple(spec.signals))
    pod_name = observed.pod_name or (observed.pod or {}).get("metadata", {}).get("name")
    frames = env.output.frames(key, pod_name)
    derived = execution_phase.derive_phase(observed, frames, datetime.now(UTC))
    derived = dataclasses.replace(derived, events_dropped=env.output.dropped(key, pod_name))
    ending = derived.finished and previous.phase not in execution_.TERMINAL_PHASES
    if ending and _end_waits_for_log(key, observed, env):
        return
    shown = execution_observed.describe(observed, pod_name)
    log.debug("execution %s: %s: %s/%s", key, shown, derived.phase, derived.reason)
    status = await _record(key, body, derived, job, env)
    gone = pod_name if observed.pod_gone else None
    env.output.notice(key, None if observed.pod_gone else observed.pod, env, gone=gone)
    if spec.signals:
        # Requested signals reach the job (overseer.operator.signals).
        pod = None if observed.pod_gone else observed.pod
        await env.signals.deliver(
            env.client, env.post_event, body, requests=spec.signals, status=status, pod=pod
        )
    if status.phase in execution_.TERMINAL_PHASES:
        await _ended(key, body, status, job=job, observed=observed, pod_name=pod_name, env=env)
        return
    # A Job long without a pod: its ServiceAccount may have been deleted by hand.
    grace = env.settings.execution_account_grace
    waiting = await env.accounts.check(env.client, key.namespace, observed, grace)
    if (again := min(filter(None, (derived.recheck_at, waiting)), default=None)) is not None:
        delay = (again - datetime.now(UTC)).total_seconds() + 0.5
        env.tracker.recheck(key, delay, lambda: observe_execution(key, env))
    else:
        env.tracker.cancel(key)  # one an earlier observation planned (no pod yet) is moot


def _end_waits_for_log(key: Key, observed: execution_phase.Observed, env: Environment) -> bool:
    """An end the pod status shows before this process read the pod's log: custom events
    still in the log go before it, so it waits (the log is followed, and its closing
    observation says the end); looked at again once the wait runs out."""
    now = datetime.now(UTC)
    held = None if observed.pod_gone else env.output.hold_end(key, observed.pod, now)
    if held is None:
        return False
    env.output.notice(key, observed.pod, env)
    delay = (held - now).total_seconds() + 0.1
    env.tracker.recheck(key, delay, lambda: observe_execution(key, env))
    return True


async def _ended(
    key: Key,
    body: Mapping[str, Any],
    status: execution_.ExecutionStatus,
    *,
    job: Mapping[str, Any] | None,
    observed: execution_phase.Observed,
    pod_name: str | None,
    env: Environment,
) -> None:
    """An ended execution: stop a Job that must not go on, else collect it when due."""
    env.tracker.cancel(key)
    if job is not None and (
        execution_observed.job_is_stuck(job, observed.pod)
        or execution_observed.killed_but_retried(status, job)
    ):
        # Nothing will ever run (an image that cannot be pulled), or a kill must not be
        # retried: stop the Job's pods now, not once the output is archived.
        log.info("execution %s: %s; deleting its Job", key, status.reason)
        await env.client.delete_job(key.namespace, job["metadata"]["name"])
    elif due := await collect.after_end(
        key, body, status, job=job, pod=(pod_name, observed.pod_gone), env=env
    ):
        delay = (due - datetime.now(UTC)).total_seconds() + 0.5
        env.tracker.recheck(key, delay, lambda: observe_execution(key, env))


def _status(body: Mapping[str, Any]) -> execution_.ExecutionStatus:
    return execution_.ExecutionStatus.model_validate(body.get("status") or {})


async def _record(
    key: Key,
    body: Mapping[str, Any],
    derived: execution_phase.Derived,
    job: Mapping[str, Any] | None,
    env: Environment,
) -> execution_.ExecutionStatus:
    """Fold ``derived`` into the execution's status; write it, and report, if it changed.
    The output hook hears what the status carries once it is written (or unchanged)."""
    previous = _status(body)
    status = execution_status.derive_status(previous, derived, env.settings.event_limits.max_events)
    if job is not None and status.job_name is None:
        status = status.model_copy(update={"job_name": job["metadata"]["name"]})
    if (archive := env.output.archive(key, status.pod_name)) is not None:
        # Archiving, then Complete once the log is read to its end: a reader of a
        # finished execution's output knows from the status whether it is whole.
        status = status.model_copy(update={"archive": archive})
    if base.to_body(status) == base.to_body(previous):
        env.output.recorded(key, status)
        return status
    kind, patch = execution_.KIND.kind, base.to_body(status)
    patch.pop("deliveries", None)  # theirs (and a replay's): a stale read must not undo one
    written = await env.client.patch_status(kind, key.namespace, key.name, patch)
    env.output.recorded(key, status)
    if written is not None and settlement.needs_unlabel(written):  # back to the watch
        await env.client.patch_merge(kind, key.namespace, key.name, settlement.UNSETTLE)
    if status.phase != previous.phase and status.phase is not None:
        log.info("execution %s: %s (%s) %s", key, status.phase, status.reason, status.message or "")
        metrics.phase_reached(status.phase, status.reason)
        if status.phase in execution_.TERMINAL_PHASES:
            kind = "Normal" if status.phase == "Complete" else "Warning"
            env.post_event(body, kind, status.reason or status.phase, status.message or "")
        spec = body.get("spec") or {}
        await last_execution.report_on_job(
            env.client,
            key.namespace,
            str(spec.get("job", "")),
            str(spec.get("executionId", "")),
            status.phase,
        )
    return status
