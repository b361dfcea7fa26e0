"""Derive an execution's phase, outcome and status events from what the cluster shows.

Pure: the batch/v1 Job and the pod of the latest attempt (plain dicts, as read), the
supervisor frames decoded from that pod's log (``overseer_library.protocol``), the
signals requested through the execution, and ``now`` in; a :class:`Derived` out.
Deriving again from the same input gives the same result, so the operator can re-read a
log from its start after a restart: :mod:`overseer.core.execution_status` folds the result
into the stored status and adds nothing twice.

The outcome comes from the container's exit code in the pod status, which the job
cannot forge; frames add what the pod status cannot say (the signal, custom events,
microsecond times) and stand in for it only when the pod is gone.
``docs/executions.rst`` lists every case and why it is decided as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from overseer.core import execution_facts, execution_job
from overseer.core.execution_facts import (
    START_FAILED,
    Facts,
    container_state,
    from_unix,
    get,
    parse_time,
    read_facts,
    true_condition,
)
from overseer.crd import execution as execution_
from overseer_library import protocol

Observed = execution_facts.Observed
"""What the operator read about one execution (re-exported: callers derive from it)."""

DEFAULT_GRACE = timedelta(seconds=60)
"""How long an image pull or container set-up may keep failing before the execution fails."""

START = "start"
COMPLETE = "complete"
FAIL = "fail"
TIME_OUT = "time-out"
TERMINAL_STATUSES = frozenset({COMPLETE, FAIL, TIME_OUT})

# Reasons Kubernetes writes on Jobs, pods and containers (ours are in crd/execution.py).
K8S_DEADLINE_EXCEEDED = "DeadlineExceeded"
K8S_EVICTED = "Evicted"
K8S_OOM_KILLED = "OOMKilled"
NEVER_PULLS = frozenset({"ErrImageNeverPull", "InvalidImageName"})
PULL_FAILING = frozenset({"ErrImagePull", "ImagePullBackOff"})
SETUP_FAILING = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)
_NEVER_RUNS_AS = ("runAsNonRoot", "non-numeric user")
_LAUNCH_REASONS = {
    127: execution_.PROGRAM_NOT_FOUND,
    126: execution_.PROGRAM_NOT_EXECUTABLE,
    125: execution_.SETUP_FAILED,
}


@dataclasses.dataclass(frozen=True)
class Derived:
    """The status an execution has, as far as the observation tells."""

    phase: execution_.Phase
    reason: str
    message: str | None = None
    exit_code: int | None = None
    signal: str | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None
    events: tuple[execution_.Event, ...] = ()
    pod_name: str | None = None
    last_seq: int = 0
    """The highest frame ``seq`` taken into account."""
    events_dropped: int = 0
    """Custom events of the pod's log not kept (over the bounds, see core.event_bounds)."""
    recheck_at: datetime | None = None
    """Derive again at this time even if nothing changes (a grace period ends)."""

    @property
    def finished(self) -> bool:
        return self.phase in execution_.TERMINAL_PHASES


@dataclasses.dataclass(frozen=True)
class _Ending:
    phase: execution_.Phase
    reason: str
    message: str
    status: str = FAIL


def derive_phase(
    observed: Observed,
    frames: Iterable[protocol.Record],
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
) -> Derived:
    """The execution's phase, outcome and events from the Job, its pod and the frames.

    ``frames`` are the records decoded from the pod's log so far, in any order, with
    duplicates (a re-read log) or not; ``now`` is aware. ``grace`` bounds how long a
    failing image pull or container set-up is waited for.
    """
    facts = read_facts(observed, frames, now)
    pod_name = observed.pod_name or get(observed.pod, "metadata", "name")
    start_time = _start_time(facts)
    ending = _ending(facts)
    progress = Derived(
        "Pending",
        "",
        start_time=start_time,
        events=_events_so_far(facts, pod_name, start_time),
        pod_name=pod_name,
        last_seq=facts.seen.last_seq,
    )
    if ending is None:
        phase, reason, message = _in_progress(facts)
        progress = dataclasses.replace(progress, phase=phase, reason=reason, message=message)
        if phase == "Pending":
            ending, recheck_at = _pending_problem(observed.pod, now, grace)
            progress = dataclasses.replace(progress, recheck_at=recheck_at)
        if ending is None:
            return progress
    return _ended(progress, facts, ending)


def _start_time(facts: Facts) -> datetime | None:
    """When the job started: the supervisor's start frame, else the container's start."""
    if facts.seen.start is not None:
        return from_unix(facts.seen.start.time)
    if facts.launched:
        return parse_time((facts.running or facts.terminated).get("startedAt"))
    return None


def _events_so_far(
    facts: Facts, pod_name: str | None, start_time: datetime | None
) -> tuple[execution_.Event, ...]:
    """The start event (once started), then the job's own events from its frames."""
    events: list[execution_.Event] = []
    if start_time is not None:
        data = {"pod": pod_name} if pod_name else None
        events.append(execution_.Event(id=START, status=START, time=start_time, data=data))
    events += [
        execution_.Event(
            id=f"{pod_name or 'pod'}:{frame.seq}",
            status=frame.status,
            time=from_unix(frame.time),
            data=frame.data,
        )
        for frame in facts.seen.events
    ]
    return tuple(events)


def _ended(progress: Derived, facts: Facts, ending: _Ending) -> Derived:
    """``progress`` finished as ``ending`` says, with its outcome and terminal event."""
    signal = protocol.signal_name(facts.signal) if facts.signal is not None else None
    data = {"exitCode": facts.code, "signal": signal, "reason": ending.reason}
    terminal = execution_.Event(
        id=ending.status,
        status=ending.status,
        time=facts.end,
        data={key: value for key, value in data.items() if value is not None},
    )
    return dataclasses.replace(
        progress,
        phase=ending.phase,
        reason=ending.reason,
        message=ending.message,
        exit_code=facts.code,
        signal=signal,
        completion_time=facts.end,
        events=(*progress.events, terminal),
    )


def _deadline(job: Mapping[str, Any] | None) -> datetime | None:
    seconds = get(job, "spec", "activeDeadlineSeconds")
    started = parse_time(get(job, "status", "startTime"))
    if seconds is None or started is None:
        return None
    return started + timedelta(seconds=int(seconds))


def _timed_out(facts: Facts) -> bool:
    if get(facts.failed, "reason") == K8S_DEADLINE_EXCEEDED:
        return True
    if get(facts.pod, "status", "reason") == K8S_DEADLINE_EXCEEDED:
        return True
    deadline = _deadline(facts.job)
    return facts.attempt_over and deadline is not None and facts.end >= deadline


def _ending(facts: Facts) -> _Ending | None:
    """How the execution ended, or None while it has not."""
    conditions = get(facts.job, "status", "conditions")
    succeeded = true_condition(conditions, "Complete") or true_condition(
        conditions, "SuccessCriteriaMet"
    )
    if succeeded or facts.code == 0 or get(facts.pod, "status", "phase") == "Succeeded":
        return _Ending("Complete", execution_.COMPLETED, "the job exited with code 0", COMPLETE)
    if _timed_out(facts):
        seconds = get(facts.job, "spec", "activeDeadlineSeconds")
        limit = f" of {seconds}s" if seconds is not None else ""
        return _Ending(
            "TimedOut",
            execution_.DEADLINE_EXCEEDED,
            f"the job ran out of its time{limit}",
            TIME_OUT,
        )
    retries = int(get(facts.job, "spec", "backoffLimit") or 0)
    retrying = retries > 0 and not facts.stopped_on_request
    if facts.failed is None and (not facts.attempt_over or retrying):
        return None
    for rule in _FAILURE_RULES:
        ending = rule(facts)
        if ending is not None:
            return ending
    return _Ending("Failed", execution_.EXIT_CODE, f"the job exited with code {facts.code}")


# The rules for an attempt that did not succeed, first match wins.


def _killed(facts: Facts) -> _Ending | None:
    if not facts.stopped_on_request:
        return None
    asked = ", ".join(facts.requested)
    return _Ending(
        "Killed", execution_.KILLED, f"stopped on request ({asked}); ended by {facts.how()}"
    )


def _evicted(facts: Facts) -> _Ending | None:
    if get(facts.pod, "status", "reason") == K8S_EVICTED:
        message = get(facts.pod, "status", "message") or "the node evicted the pod"
        return _Ending("Failed", execution_.EVICTED, str(message))
    disruption = true_condition(get(facts.pod, "status", "conditions"), "DisruptionTarget")
    if disruption is not None:
        message = disruption.get("message") or disruption.get("reason") or "disrupted"
        return _Ending("Failed", execution_.DISRUPTED, str(message))
    return None


def _deleted(facts: Facts) -> _Ending | None:
    if get(facts.pod, "metadata", "deletionTimestamp") or facts.observed.pod_gone:
        message = f"the pod was deleted before the job ended; ended by {facts.how()}"
        if facts.code is None:
            message = "the pod was deleted before the job ended"
        return _Ending("Failed", execution_.POD_DELETED, message)
    return None


def _container_failed(facts: Facts) -> _Ending | None:
    reason = facts.terminated.get("reason")
    if reason == K8S_OOM_KILLED:
        return _Ending(
            "Failed", execution_.OOM_KILLED, "the job ran out of memory (its memory limit)"
        )
    if reason in START_FAILED:
        message = facts.terminated.get("message") or "the container could not start"
        return _Ending("Failed", execution_.CONTAINER_START_FAILED, str(message))
    return None


def _not_launched(facts: Facts) -> _Ending | None:
    seen = facts.seen
    if seen.start is None and seen.exit is not None and facts.code in _LAUNCH_REASONS:
        message = seen.error or f"the job could not start (exit code {facts.code})"
        return _Ending("Failed", _LAUNCH_REASONS[facts.code], message)
    init = (
        container_state(facts.pod, execution_job.INIT_CONTAINER, init=True).get("terminated") or {}
    )
    if init.get("exitCode", 0) != 0:
        message = init.get("message") or f"exit code {init.get('exitCode')}"
        return _Ending(
            "Failed", execution_.LIBRARY_COPY_FAILED, f"copying the library failed: {message}"
        )
    return None


def _no_exit_code(facts: Facts) -> _Ending | None:
    if facts.code is not None:
        return None
    reason = get(facts.pod, "status", "reason")
    if reason:
        return _Ending("Failed", str(reason), str(get(facts.pod, "status", "message") or reason))
    reason = get(facts.failed, "reason") or execution_.JOB_FAILED
    return _Ending("Failed", str(reason), str(get(facts.failed, "message") or "the Job failed"))


def _signalled(facts: Facts) -> _Ending | None:
    if facts.signal is None:
        return None
    message = f"the job was ended by {facts.how()} (exit status {facts.code})"
    return _Ending("Failed", execution_.SIGNALLED, message)


_FAILURE_RULES = (
    _killed,
    _evicted,
    _deleted,
    _container_failed,
    _not_launched,
    _no_exit_code,
    _signalled,
)


def _in_progress(facts: Facts) -> tuple[execution_.Phase, str, str]:
    """Phase, reason and message of an execution that has not ended."""
    pod = facts.pod
    phase: execution_.Phase = "Running" if facts.launched else "Pending"
    if facts.attempt_over:
        return phase, execution_.RETRYING, "the attempt failed; Kubernetes starts another"
    if facts.launched:
        if get(pod, "metadata", "deletionTimestamp"):
            return phase, execution_.TERMINATING, "the pod is being deleted"
        return phase, execution_.RUNNING, "the job is running"
    if pod is None:
        return phase, execution_.CREATING, "waiting for the pod to be created"
    for condition in get(pod, "status", "conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = str(condition.get("reason") or execution_.UNSCHEDULABLE)
            return phase, reason, str(condition.get("message") or "the pod cannot be scheduled")
    reason, message = _waiting(pod)
    return phase, reason or execution_.STARTING, message or reason or "the pod is starting"


def _waiting(pod: Mapping[str, Any] | None) -> tuple[str, str]:
    """The waiting reason and message of the init container, else of the job container."""
    for state in (
        container_state(pod, execution_job.INIT_CONTAINER, init=True),
        container_state(pod, execution_job.CONTAINER),
    ):
        waiting = state.get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"]), str(waiting.get("message") or "")
    return "", ""


def _pending_problem(
    pod: Mapping[str, Any] | None, now: datetime, grace: timedelta
) -> tuple[_Ending | None, datetime | None]:
    """A failure the pending pod will not get over, or when to look again (or neither)."""
    reason, message = _waiting(pod)
    if reason in NEVER_PULLS:
        return _Ending("Failed", execution_.IMAGE_PULL_FAILED, message or reason), None
    if reason == "CreateContainerConfigError" and any(m in message for m in _NEVER_RUNS_AS):
        return _Ending("Failed", execution_.CONTAINER_CONFIG_ERROR, message), None
    if reason not in PULL_FAILING | SETUP_FAILING:
        return None, None
    since = (
        parse_time(get(pod, "status", "startTime"))
        or parse_time(get(pod, "metadata", "creationTimestamp"))
        or now
    )
    if now < since + grace:
        return None, since + grace
    ours = (
        execution_.IMAGE_PULL_FAILED
        if reason in PULL_FAILING
        else execution_.CONTAINER_CONFIG_ERROR
    )
    message = f"{message or reason} (still failing after {int(grace.total_seconds())}s)"
    return _Ending("Failed", ours, message), None


# --- folding into the status -----------------------------------------------------------
