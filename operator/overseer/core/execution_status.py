"""Fold a derivation into an execution's recorded status: events merged, times refined.

Pure. :func:`derive_status` is what the operator writes after each observation: the
previous status updated by :func:`overseer.core.execution_phase.derive_phase`'s result.
Events are merged idempotently (:func:`merge_events`), so re-reading a log adds nothing
twice, and a start or terminal time first known from the pod status (whole seconds) is
refined by the supervisor's frame (microseconds) once the log has been read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from overseer.core import event_bounds
from overseer.core.execution_facts import aware
from overseer.core.execution_phase import START, TERMINAL_STATUSES, Derived
from overseer.crd import execution as execution_

REFINE_WINDOW = timedelta(seconds=5)
"""How far a frame's time may be from the pod status's whole second for the same event:
the supervisor's few moments before or after the container's."""


def _identity(event: execution_.Event) -> str:
    return event.id if event.id else f"{event.status}@{aware(event.time).isoformat()}"


def _rank(event: execution_.Event) -> tuple[int, datetime]:
    order = 0 if event.status == START else 2 if event.status in TERMINAL_STATUSES else 1
    return order, aware(event.time)


def _pod_of(event: execution_.Event) -> object:
    return event.data.get("pod") if isinstance(event.data, Mapping) else None


def refine_time(recorded: execution_.Event, derived: execution_.Event) -> execution_.Event:
    """``recorded`` with the microseconds of ``derived`` when only ``derived`` has them.

    The pod status gives whole seconds; the supervisor's ``start`` and ``exit`` frames
    give microseconds but may be read after the pod status was. A recorded start or
    terminal event on a whole second takes the time of the same event derived from a
    frame (a start of the same pod: a retry's start never moves the first); its id and
    data stay. A time that has a fraction came from a frame and is never replaced, nor is
    one by a time more than :data:`REFINE_WINDOW` from it: that is the same end seen anew
    (its Job collected, say), which must not move the end a user was told.
    """
    if recorded.status != derived.status or recorded.time.microsecond:
        return recorded
    if not derived.time.microsecond:
        return recorded
    if abs(aware(derived.time) - aware(recorded.time)) >= REFINE_WINDOW:
        return recorded
    if recorded.status == START and _pod_of(recorded) != _pod_of(derived):
        return recorded
    return recorded.model_copy(update={"time": derived.time})


def merge_events(
    recorded: Sequence[execution_.Event], derived: Iterable[execution_.Event]
) -> list[execution_.Event]:
    """``recorded`` plus the derived events it lacks: idempotent, ordered.

    An event is known by its ``id`` (by status and time when it has none); there is one
    ``start`` and one terminal event at most, the first recorded winning, with its time
    refined to the microsecond by a frame (:func:`refine_time`). The result is
    ``start``, custom events by time (stable), then the terminal event.
    """
    merged = list(recorded)
    seen = {_identity(event) for event in merged}
    for event in derived:
        kinds = {e.status for e in merged}
        if (event.status == START and START in kinds) or (
            event.status in TERMINAL_STATUSES and kinds & TERMINAL_STATUSES
        ):
            merged = [refine_time(e, event) for e in merged]
            continue
        if _identity(event) in seen:
            continue
        merged.append(event)
        seen.add(_identity(event))
    return sorted(merged, key=_rank)


_FILLED = ("exit_code", "signal", "start_time", "completion_time", "pod_name")


def _refine_times(values: dict[str, Any], before: Sequence[execution_.Event]) -> None:
    """Start and completion times follow their events when a frame refined those."""
    for field, kinds in (("start_time", {START}), ("completion_time", TERMINAL_STATUSES)):
        old = next((e.time for e in before if e.status in kinds), None)
        new = next((e.time for e in values["events"] if e.status in kinds), None)
        if old is not None and new != old and values[field] == old:
            values[field] = new


def derive_status(
    previous: execution_.ExecutionStatus,
    derived: Derived,
    max_events: int = event_bounds.DEFAULT_EVENT_LIMITS.max_events,
) -> execution_.ExecutionStatus:
    """The status to write: ``previous`` updated by ``derived``.

    Custom events stay within ``max_events`` (the first kept); those cut, and those the
    log follower did not keep, are counted in ``eventsDropped`` (at least; it never goes
    down).

    A terminal phase never changes (a pod deleted after the job completed does not turn
    it into a failure); it only gains the details it lacked from a derivation of the same
    phase. A running execution never goes back to Pending (a retry's new pod). The first
    start time is kept.
    """
    values = previous.model_dump(by_alias=False)
    merged = merge_events(previous.events, derived.events)
    custom = [e.status != START and e.status not in TERMINAL_STATUSES for e in merged]
    values["events"], cut = event_bounds.bound_custom_events(merged, custom, max_events)
    # Deriving again from the same frames cuts the same events: max() counts them once.
    dropped = max(previous.events_dropped or 0, derived.events_dropped + cut)
    values["events_dropped"] = dropped or None
    _refine_times(values, previous.events)
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
