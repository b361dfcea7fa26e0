"""What the phase rules look at: the facts read once from one observation of an execution.

Pure. :class:`Observed` is what the operator read (the Job, the newest pod, the signals
requested); :func:`read_facts` adds the supervisor's frames and ``now`` and gives the
:class:`Facts` that :mod:`overseer.core.execution_phase` decides on. The small readers
of plain Kubernetes dicts (:func:`get`, :func:`container_state`, :func:`true_condition`,
:func:`parse_time`) live here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from overseer import errors
from overseer.core import execution_job, signals
from overseer.crd import execution as execution_
from overseer_library import protocol

START_FAILED = frozenset({"StartError", "ContainerCannotRun"})
"""Container terminations that mean the program never started."""


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
class Frames:
    start: protocol.Start | None
    exit: protocol.Exit | None
    events: tuple[protocol.Event, ...]
    error: str | None
    last_seq: int


def read_frames(records: Iterable[protocol.Record]) -> Frames:
    """The frames once each (the first of each ``seq``), in ``seq`` order."""
    by_seq: dict[int, protocol.Frame] = {}
    for record in records:
        if not isinstance(record, protocol.Unframed):
            by_seq.setdefault(record.seq, record)
    frames = [by_seq[seq] for seq in sorted(by_seq)]
    starts = [f for f in frames if isinstance(f, protocol.Start)]
    exits = [f for f in frames if isinstance(f, protocol.Exit)]
    errors = [f.message for f in frames if isinstance(f, protocol.Log) and f.level == "error"]
    return Frames(
        start=starts[0] if starts else None,
        exit=exits[0] if exits else None,
        events=tuple(f for f in frames if isinstance(f, protocol.Event)),
        error=errors[-1] if errors else None,
        last_seq=max(by_seq, default=0),
    )


def get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return aware(value)
    return None


def aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def container_state(pod: Any, name: str, *, init: bool = False) -> Mapping[str, Any]:
    """The ``state`` of one container of the pod ({} when unknown)."""
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in get(pod, "status", key) or ():
        if status.get("name") == name:
            return cast("Mapping[str, Any]", status.get("state") or {})
    return {}


def true_condition(conditions: Any, kind: str) -> Mapping[str, Any] | None:
    """The condition of that type when its status is True."""
    for condition in conditions or ():
        if condition.get("type") == kind and condition.get("status") == "True":
            return cast("Mapping[str, Any]", condition)
    return None


@dataclasses.dataclass(frozen=True)
class Facts:
    """Everything the rules look at, read once from the observation."""

    observed: Observed
    seen: Frames
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
        ran = bool(self.terminated) and self.terminated.get("reason") not in START_FAILED
        started = bool(self.running) or ran
        return self.seen.start is not None or (self.seen.exit is None and started)

    @property
    def attempt_over(self) -> bool:
        gone = self.observed.pod_gone or get(self.pod, "status", "phase") == "Failed"
        return self.code is not None or gone

    @property
    def requested(self) -> list[str]:
        """Signals requested through the execution before the attempt ended.

        Kubernetes' times are whole seconds (``finishedAt`` of 10:00:02 may be
        10:00:02.9): before the ``exit`` frame is read, the end is taken as the next
        second, so that a KILL requested at 10:00:02.5 counts.
        """
        end = self.end if self.end.microsecond else self.end + timedelta(seconds=1)
        return [s.signal for s in self.observed.signals if aware(s.requested_at) < end]

    @property
    def stopped_on_request(self) -> bool:
        """The attempt ended because of a signal requested through the execution: killed
        by one of them (or by the KILL that follows an ignored TERM, killAfter later), or
        exited non-zero after a requested TERM, INT, QUIT or KILL it caught. A caught HUP
        or USR1 followed, later, by a failure is a failure."""
        requested: set[str] = set()
        for text in self.requested:
            try:
                requested.add(signals.parse_signal(text))
            except errors.SignalError:
                continue  # refused, never sent
        if self.signal is not None:
            # A KILL after a requested TERM (or INT, QUIT) the job ignored is the
            # supervisor's escalation (killAfter), unless the kernel's OOM killer sent it.
            escalated = (
                self.signal == signals.signal_number("SIGKILL")
                and bool(requested & signals.STOPPING)
                and self.terminated.get("reason") != "OOMKilled"
            )
            return escalated or any(signals.signal_number(n) == self.signal for n in requested)
        return self.code not in (None, 0) and bool(requested & signals.STOPPING)

    def how(self) -> str:
        if self.signal is not None:
            return f"signal {protocol.signal_name(self.signal)}"
        return f"code {self.code}"


def read_facts(observed: Observed, records: Iterable[protocol.Record], now: datetime) -> Facts:
    seen = read_frames(records)
    state = container_state(observed.pod, execution_job.CONTAINER)
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
    conditions = get(observed.job, "status", "conditions")
    failed = true_condition(conditions, "Failed") or true_condition(conditions, "FailureTarget")
    ended_at = (
        (from_unix(seen.exit.time) if seen.exit else None)
        or parse_time(terminated.get("finishedAt"))
        or parse_time(get(observed.job, "status", "completionTime"))
        or parse_time(get(failed, "lastTransitionTime"))
    )
    return Facts(
        observed, seen, state.get("running"), terminated, code, signal, failed, ended_at, now
    )
