"""Derive an execution's phase, outcome and status events from what the cluster shows.

Pure: the batch/v1 Job and the pod of the latest attempt (plain dicts, as read), the
supervisor frames decoded from that pod's log (``overseer_library.protocol``), the
signals requested through the execution, and ``now`` in; a :class:`Derived` out.
Deriving again from the same input gives the same result, so the operator can re-read a
log from its start after a restart: :func:`merge_events` adds nothing twice.

The outcome comes from the container's exit code in the pod status, which the job
cannot forge; frames add what the pod status cannot say (the signal, custom events,
microsecond times) and stand in for it only when the pod is gone.
``docs/executions.rst`` lists every case and why it is decided as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from overseer.core import execution_job, signals
from overseer.crd import execution as execution_
from overseer_library import protocol

DEFAULT_GRACE = timedelta(seconds=60)
"""How long an image pull or container set-up may keep failing before the execution fails."""

START = "start"
COMPLETE = "complete"
FAIL = "fail"
TIME_OUT = "time-out"
TERMINAL_STATUSES = frozenset({COMPLETE, FAIL, TIME_OUT})

NEVER_PULLS = frozenset({"ErrImageNeverPull", "InvalidImageName"})
PULL_FAILING = frozenset({"ErrImagePull", "ImagePullBackOff"})
SETUP_FAILING = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)
_NEVER_RUNS_AS = ("runAsNonRoot", "non-numeric user")
_LAUNCH_REASONS = {127: "ProgramNotFound", 126: "ProgramNotExecutable", 125: "SetupFailed"}
_START_FAILED = frozenset({"StartError", "ContainerCannotRun"})


@dataclasses.dataclass(frozen=True)
class Observed:
    """What the operator last read about one execution."""

    job: Mapping[str, Any] | None = None
    """The batch/v1 Job, None when not created yet or already gone."""
    pod: Mapping[str, Any] | None = None
    """The latest attempt's pod (the newest pod of the Job); its last state when deleted."""
    pod_name: str | None = None
    """Name of the pod the frames come from; defaults to ``pod``'s."""
    pod_gone: bool = False
    """The pod was deleted (the watch said so) or vanished."""
    signals: Sequence[execution_.SignalRequest] = ()
    """``spec.signals``: signals requested through the execution."""


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
    recheck_at: datetime | None = None
    """Derive again at this time even if nothing changes (a grace period ends)."""

    @property
    def finished(self) -> bool:
        return self.phase in execution_.TERMINAL_PHASES


@dataclasses.dataclass(frozen=True)
class _Frames:
    start: protocol.Start | None
    exit: protocol.Exit | None
    events: tuple[protocol.Event, ...]
    error: str | None
    last_seq: int


def _frames(records: Iterable[protocol.Record]) -> _Frames:
    """The frames once each (the first of each ``seq``), in ``seq`` order."""
    by_seq: dict[int, protocol.Frame] = {}
    for record in records:
        if not isinstance(record, protocol.Unframed):
            by_seq.setdefault(record.seq, record)
    frames = [by_seq[seq] for seq in sorted(by_seq)]
    starts = [f for f in frames if isinstance(f, protocol.Start)]
    exits = [f for f in frames if isinstance(f, protocol.Exit)]
    errors = [f.message for f in frames if isinstance(f, protocol.Log) and f.level == "error"]
    return _Frames(
        start=starts[0] if starts else None,
        exit=exits[0] if exits else None,
        events=tuple(f for f in frames if isinstance(f, protocol.Event)),
        error=errors[-1] if errors else None,
        last_seq=max(by_seq, default=0),
    )


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _time(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return _aware(value)
    return None


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _state(pod: Any, name: str, *, init: bool = False) -> Mapping[str, Any]:
    """The ``state`` of one container of the pod ({} when unknown)."""
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in _get(pod, "status", key) or ():
        if status.get("name") == name:
            return cast("Mapping[str, Any]", status.get("state") or {})
    return {}


def _condition(conditions: Any, kind: str) -> Mapping[str, Any] | None:
    """The condition of that type when its status is True."""
    for condition in conditions or ():
        if condition.get("type") == kind and condition.get("status") == "True":
            return cast("Mapping[str, Any]", condition)
    return None


@dataclasses.dataclass(frozen=True)
class _Facts:
    """Everything the rules look at, read once from the observation."""

    observed: Observed
    seen: _Frames
    running: Mapping[str, Any] | None
    terminated: Mapping[str, Any]
    code: int | None
    signal: int | None
    failed: Mapping[str, Any] | None
    """The Job's Failed (or FailureTarget) condition."""
    ended_at: datetime | None
    now: datetime

    @property
    def pod(self) -> Mapping[str, Any] | None:
        return self.observed.pod

    @property
    def job(self) -> Mapping[str, Any] | None:
        return self.observed.job

    @property
    def end(self) -> datetime:
        return self.ended_at or self.now

    @property
    def launched(self) -> bool:
        """The job's process started: a start frame, or a container that ran without the
        supervisor saying it could not launch."""
        ran = bool(self.terminated) and self.terminated.get("reason") not in _START_FAILED
        started = bool(self.running) or ran
        return self.seen.start is not None or (self.seen.exit is None and started)

    @property
    def attempt_over(self) -> bool:
        gone = self.observed.pod_gone or _get(self.pod, "status", "phase") == "Failed"
        return self.code is not None or gone

    @property
    def requested(self) -> list[str]:
        """Signals requested through the execution before the attempt ended.

        Kubernetes' times are whole seconds (``finishedAt`` of 10:00:02 may be
        10:00:02.9): before the ``exit`` frame is read, the end is taken as the next
        second, so that a KILL requested at 10:00:02.5 counts.
        """
        end = self.end if self.end.microsecond else self.end + timedelta(seconds=1)
        return [s.signal for s in self.observed.signals if _aware(s.requested_at) < end]

    @property
    def stopped_on_request(self) -> bool:
        """The attempt ended because of a signal requested through the execution: killed
        by one of them, or exited non-zero after a requested TERM, INT, QUIT or KILL it
        caught. A caught HUP or USR1 followed, later, by a failure is a failure."""
        requested: set[str] = set()
        for text in self.requested:
            try:
                requested.add(signals.parse_signal(text))
            except signals.SignalError:
                continue  # refused, never sent
        if self.signal is not None:
            return any(signals.signal_number(name) == self.signal for name in requested)
        return self.code not in (None, 0) and bool(requested & signals.STOPPING)

    def how(self) -> str:
        if self.signal is not None:
            return f"signal {protocol.signal_name(self.signal)}"
        return f"code {self.code}"


def _facts(observed: Observed, records: Iterable[protocol.Record], now: datetime) -> _Facts:
    seen = _frames(records)
    state = _state(observed.pod, execution_job.CONTAINER)
    terminated = state.get("terminated") or {}
    code: int | None = None
    signal: int | None = None
    if terminated:
        code = int(terminated.get("exitCode", 0))
        summary = protocol.decode_summary(terminated.get("message") or "")
        if summary is not None and summary.status == code:
            signal = summary.signal
        elif seen.exit is not None and seen.exit.status == code:
            signal = seen.exit.signal
    elif seen.exit is not None and (observed.pod_gone or observed.pod is None):
        code, signal = seen.exit.status, seen.exit.signal
    conditions = _get(observed.job, "status", "conditions")
    failed = _condition(conditions, "Failed") or _condition(conditions, "FailureTarget")
    ended_at = (
        (_from_unix(seen.exit.time) if seen.exit else None)
        or _time(terminated.get("finishedAt"))
        or _time(_get(observed.job, "status", "completionTime"))
        or _time(_get(failed, "lastTransitionTime"))
    )
    return _Facts(
        observed, seen, state.get("running"), terminated, code, signal, failed, ended_at, now
    )


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
    facts = _facts(observed, frames, now)
    pod_name = observed.pod_name or _get(observed.pod, "metadata", "name")
    start_time: datetime | None = None
    if facts.seen.start is not None:
        start_time = _from_unix(facts.seen.start.time)
    elif facts.launched:
        start_time = _time((facts.running or facts.terminated).get("startedAt"))
    events: list[execution_.Event] = []
    if start_time is not None:
        data = {"pod": pod_name} if pod_name else None
        events.append(execution_.Event(id=START, status=START, time=start_time, data=data))
    events += [
        execution_.Event(
            id=f"{pod_name or 'pod'}:{frame.seq}",
            status=frame.status,
            time=_from_unix(frame.time),
            data=frame.data,
        )
        for frame in facts.seen.events
    ]
    ending = _ending(facts)
    progress = Derived(
        "Pending",
        "",
        start_time=start_time,
        events=tuple(events),
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
        events=(*events, terminal),
    )


def _deadline(job: Mapping[str, Any] | None) -> datetime | None:
    seconds = _get(job, "spec", "activeDeadlineSeconds")
    started = _time(_get(job, "status", "startTime"))
    if seconds is None or started is None:
        return None
    return started + timedelta(seconds=int(seconds))


def _timed_out(facts: _Facts) -> bool:
    if _get(facts.failed, "reason") == "DeadlineExceeded":
        return True
    if _get(facts.pod, "status", "reason") == "DeadlineExceeded":
        return True
    deadline = _deadline(facts.job)
    return facts.attempt_over and deadline is not None and facts.end >= deadline


def _ending(facts: _Facts) -> _Ending | None:
    """How the execution ended, or None while it has not."""
    conditions = _get(facts.job, "status", "conditions")
    succeeded = _condition(conditions, "Complete") or _condition(conditions, "SuccessCriteriaMet")
    if succeeded or facts.code == 0 or _get(facts.pod, "status", "phase") == "Succeeded":
        return _Ending("Complete", "Completed", "the job exited with code 0", COMPLETE)
    if _timed_out(facts):
        seconds = _get(facts.job, "spec", "activeDeadlineSeconds")
        limit = f" of {seconds}s" if seconds is not None else ""
        return _Ending(
            "TimedOut", "DeadlineExceeded", f"the job ran out of its time{limit}", TIME_OUT
        )
    retries = int(_get(facts.job, "spec", "backoffLimit") or 0)
    retrying = retries > 0 and not facts.stopped_on_request
    if facts.failed is None and (not facts.attempt_over or retrying):
        return None
    for rule in _FAILURE_RULES:
        ending = rule(facts)
        if ending is not None:
            return ending
    return _Ending("Failed", "ExitCode", f"the job exited with code {facts.code}")


# The rules for an attempt that did not succeed, first match wins.


def _killed(facts: _Facts) -> _Ending | None:
    if not facts.stopped_on_request:
        return None
    asked = ", ".join(facts.requested)
    return _Ending("Killed", "Killed", f"stopped on request ({asked}); ended by {facts.how()}")


def _evicted(facts: _Facts) -> _Ending | None:
    if _get(facts.pod, "status", "reason") == "Evicted":
        message = _get(facts.pod, "status", "message") or "the node evicted the pod"
        return _Ending("Failed", "Evicted", str(message))
    disruption = _condition(_get(facts.pod, "status", "conditions"), "DisruptionTarget")
    if disruption is not None:
        message = disruption.get("message") or disruption.get("reason") or "disrupted"
        return _Ending("Failed", "Disrupted", str(message))
    return None


def _deleted(facts: _Facts) -> _Ending | None:
    if _get(facts.pod, "metadata", "deletionTimestamp") or facts.observed.pod_gone:
        message = f"the pod was deleted before the job ended; ended by {facts.how()}"
        if facts.code is None:
            message = "the pod was deleted before the job ended"
        return _Ending("Failed", "PodDeleted", message)
    return None


def _container_failed(facts: _Facts) -> _Ending | None:
    reason = facts.terminated.get("reason")
    if reason == "OOMKilled":
        return _Ending("Failed", "OOMKilled", "the job ran out of memory (its memory limit)")
    if reason in _START_FAILED:
        message = facts.terminated.get("message") or "the container could not start"
        return _Ending("Failed", "ContainerStartFailed", str(message))
    return None


def _not_launched(facts: _Facts) -> _Ending | None:
    seen = facts.seen
    if seen.start is None and seen.exit is not None and facts.code in _LAUNCH_REASONS:
        message = seen.error or f"the job could not start (exit code {facts.code})"
        return _Ending("Failed", _LAUNCH_REASONS[facts.code], message)
    init = _state(facts.pod, execution_job.INIT_CONTAINER, init=True).get("terminated") or {}
    if init.get("exitCode", 0) != 0:
        message = init.get("message") or f"exit code {init.get('exitCode')}"
        return _Ending("Failed", "LibraryCopyFailed", f"copying the library failed: {message}")
    return None


def _no_exit_code(facts: _Facts) -> _Ending | None:
    if facts.code is not None:
        return None
    reason = _get(facts.pod, "status", "reason")
    if reason:
        return _Ending("Failed", str(reason), str(_get(facts.pod, "status", "message") or reason))
    reason = _get(facts.failed, "reason") or "JobFailed"
    return _Ending("Failed", str(reason), str(_get(facts.failed, "message") or "the Job failed"))


def _signalled(facts: _Facts) -> _Ending | None:
    if facts.signal is None:
        return None
    message = f"the job was ended by {facts.how()} (exit status {facts.code})"
    return _Ending("Failed", "Signalled", message)


_FAILURE_RULES = (
    _killed,
    _evicted,
    _deleted,
    _container_failed,
    _not_launched,
    _no_exit_code,
    _signalled,
)


def _in_progress(facts: _Facts) -> tuple[execution_.Phase, str, str]:
    """Phase, reason and message of an execution that has not ended."""
    pod = facts.pod
    phase: execution_.Phase = "Running" if facts.launched else "Pending"
    if facts.attempt_over:
        return phase, "Retrying", "the attempt failed; Kubernetes starts another"
    if facts.launched:
        if _get(pod, "metadata", "deletionTimestamp"):
            return phase, "Terminating", "the pod is being deleted"
        return phase, "Running", "the job is running"
    if pod is None:
        return phase, "Creating", "waiting for the pod to be created"
    for condition in _get(pod, "status", "conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = str(condition.get("reason") or "Unschedulable")
            return phase, reason, str(condition.get("message") or "the pod cannot be scheduled")
    reason, message = _waiting(pod)
    return phase, reason or "Starting", message or reason or "the pod is starting"


def _waiting(pod: Mapping[str, Any] | None) -> tuple[str, str]:
    """The waiting reason and message of the init container, else of the job container."""
    for state in (
        _state(pod, execution_job.INIT_CONTAINER, init=True),
        _state(pod, execution_job.CONTAINER),
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
        return _Ending("Failed", "ImagePullFailed", message or reason), None
    if reason == "CreateContainerConfigError" and any(m in message for m in _NEVER_RUNS_AS):
        return _Ending("Failed", "ContainerConfigError", message), None
    if reason not in PULL_FAILING | SETUP_FAILING:
        return None, None
    since = (
        _time(_get(pod, "status", "startTime"))
        or _time(_get(pod, "metadata", "creationTimestamp"))
        or now
    )
    if now < since + grace:
        return None, since + grace
    ours = "ImagePullFailed" if reason in PULL_FAILING else "ContainerConfigError"
    message = f"{message or reason} (still failing after {int(grace.total_seconds())}s)"
    return _Ending("Failed", ours, message), None


# --- folding into the status -----------------------------------------------------------


def _identity(event: execution_.Event) -> str:
    return event.id if event.id else f"{event.status}@{_aware(event.time).isoformat()}"


def _rank(event: execution_.Event) -> tuple[int, datetime]:
    order = 0 if event.status == START else 2 if event.status in TERMINAL_STATUSES else 1
    return order, _aware(event.time)


def merge_events(
    recorded: Sequence[execution_.Event], derived: Iterable[execution_.Event]
) -> list[execution_.Event]:
    """``recorded`` plus the derived events it lacks: idempotent, ordered.

    An event is known by its ``id`` (by status and time when it has none); there is one
    ``start`` and one terminal event at most, the first recorded winning. The result is
    ``start``, custom events by time (stable), then the terminal event.
    """
    merged = list(recorded)
    seen = {_identity(event) for event in merged}
    for event in derived:
        kinds = {e.status for e in merged}
        if _identity(event) in seen:
            continue
        if event.status == START and START in kinds:
            continue
        if event.status in TERMINAL_STATUSES and kinds & TERMINAL_STATUSES:
            continue
        merged.append(event)
        seen.add(_identity(event))
    return sorted(merged, key=_rank)


_FILLED = ("exit_code", "signal", "start_time", "completion_time", "pod_name")


def derive_status(
    previous: execution_.ExecutionStatus, derived: Derived
) -> execution_.ExecutionStatus:
    """The status to write: ``previous`` updated by ``derived``.

    A terminal phase never changes (a pod deleted after the job completed does not turn
    it into a failure); it only gains the details it lacked from a derivation of the same
    phase. A running execution never goes back to Pending (a retry's new pod). The first
    start time is kept.
    """
    values = previous.model_dump(by_alias=False)
    values["events"] = merge_events(previous.events, derived.events)
    if previous.phase in execution_.TERMINAL_PHASES:
        if derived.phase == previous.phase:
            for field in _FILLED:
                if values[field] is None:
                    values[field] = getattr(derived, field)
        return execution_.ExecutionStatus.model_validate(values)
    if not (previous.phase == "Running" and derived.phase == "Pending"):
        values.update(phase=derived.phase, reason=derived.reason, message=derived.message)
    for field in _FILLED:
        new = getattr(derived, field)
        if new is not None and not (field == "start_time" and values[field] is not None):
            values[field] = new
    return execution_.ExecutionStatus.model_validate(values)
