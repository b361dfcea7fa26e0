"""When a scheduled job runs: cron times in a time zone, and what is due now.

Pure: the scheduler (``overseer.operator.scheduler``) asks :func:`plan_schedule` what
to create and how long to sleep, and :func:`build_scheduled_execution` for the object.

Cron fields are read on the wall clock of the job's time zone, with the rules of
Vixie cron (Debian's ``cron``) across daylight-saving changes:

- a *wall-clock* job (neither the minute nor the hour field starts with ``*``, such as
  ``30 2 * * *``) runs once per matching local time: at its first occurrence when the
  clock goes back, and at the end of the gap when the clock jumps over it;
- an *interval* job (``*/15 * * * *``, ``5 * * * *``, ``@hourly``) follows elapsed
  time: it runs at every instant whose local time matches, so in both passes of a
  repeated hour and not at all in a skipped one.

Missed times follow Kubernetes CronJob: of the times since the last scheduled one,
only the most recent runs, and only if it is not older than the starting deadline;
more than :data:`TOO_MANY_MISSED` of them is reported.
"""

from __future__ import annotations

import dataclasses
import heapq
import zoneinfo
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from overseer.core import execution_resource, names
from overseer.crd import definition as defn
from overseer.crd import execution as execution_
from overseer.crd import types

TOO_MANY_MISSED = 100
"""More missed times than this is worth a warning (Kubernetes CronJob's threshold)."""
SCHEDULED_TIME_ANNOTATION = "overseer.dev/scheduled-time"
"""Annotation of a scheduled execution: the scheduled time, RFC 3339 in UTC."""

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# No zone moves its clock by more than this at once (Antarctica/Troll: 2h). Local times
# map to instants in order except across such a move, so this much look-ahead suffices.
_SHIFT = timedelta(hours=3)
_MICROSECOND = timedelta(microseconds=1)
_FIXED_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "Zulu"})


@dataclasses.dataclass(frozen=True)
class Cron:
    """A schedule ready to iterate: five cron fields read in one time zone."""

    fields: str
    zone: zoneinfo.ZoneInfo
    follows_clock: bool
    """True for a wall-clock job, False for an interval job (see the module docstring)."""
    margin: timedelta = 2 * _SHIFT
    """How far local times can map out of order (a minute in UTC, which never shifts)."""

    @classmethod
    def of(cls, schedule: defn.Schedule) -> Cron:
        fields = _MACROS.get(schedule.cron.strip(), schedule.cron.strip())
        minute, hour = fields.split()[:2]
        zone = schedule.timezone or "UTC"
        return cls(
            fields=fields,
            zone=zoneinfo.ZoneInfo(zone),
            follows_clock=not (minute.startswith("*") or hour.startswith("*")),
            margin=timedelta(minutes=1) if zone in _FIXED_ZONES else 2 * _SHIFT,
        )

    def instants(self, local: datetime) -> tuple[datetime, ...]:
        """The UTC instants at which the naive local time ``local`` runs (0, 1 or 2)."""
        first = local.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = local.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first == second:
            return (first,)
        exists = [u for u in (first, second) if self._local(u) == local]
        if exists:  # a repeated local time: the clock went back
            ordered = sorted(exists)
            return (ordered[0],) if self.follows_clock else tuple(ordered)
        # A skipped local time: the clock jumped over it.
        return (
            (self._gap_end(min(first, second), max(first, second)),) if self.follows_clock else ()
        )

    def _local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone).replace(tzinfo=None)

    def _gap_end(self, before: datetime, after: datetime) -> datetime:
        """The first instant of ``(before, after]`` whose local time is past the gap."""
        target = self._local(before)
        low, high = 0, int((after - before).total_seconds())
        while high - low > 1:  # local(before + low) is before the gap, local(+high) after
            middle = (low + high) // 2
            if self._local(before + timedelta(seconds=middle)) > target + timedelta(seconds=middle):
                high = middle
            else:
                low = middle
        return before + timedelta(seconds=high)

    def times_after(self, start: datetime) -> Iterator[datetime]:
        """Scheduled instants strictly after ``start``, in order, without end."""
        local = self._local(start) - self.margin
        it = croniter(self.fields, local)
        pending: list[datetime] = []
        while True:
            local = it.get_next(datetime)
            for instant in self.instants(local):
                if instant > start:
                    heapq.heappush(pending, instant)
            # Later local times never map before this bound (see _SHIFT).
            bound = local.replace(tzinfo=self.zone).astimezone(UTC) - self.margin
            while pending and pending[0] < bound:
                yield _pop_unique(pending)

    def times_until(self, end: datetime) -> Iterator[datetime]:
        """Scheduled instants at or before ``end``, newest first, without end."""
        local = self._local(end) + self.margin
        it = croniter(self.fields, local)
        pending: list[tuple[datetime, datetime]] = []  # (negated order key, instant)
        while True:
            local = it.get_prev(datetime)
            for instant in self.instants(local):
                if instant <= end:
                    heapq.heappush(pending, (_negate(instant), instant))
            bound = local.replace(tzinfo=self.zone).astimezone(UTC) + self.margin
            while pending and pending[0][1] > bound:
                _, instant = heapq.heappop(pending)
                while pending and pending[0][1] == instant:
                    heapq.heappop(pending)
                yield instant


def _pop_unique(heap: list[datetime]) -> datetime:
    """Pop the smallest instant and its duplicates (two skipped times share a gap end)."""
    instant = heapq.heappop(heap)
    while heap and heap[0] == instant:
        heapq.heappop(heap)
    return instant


_FAR = datetime(9999, 1, 1, tzinfo=UTC)


def _negate(instant: datetime) -> datetime:
    """An order key that sorts later instants first (a min-heap used as a max-heap)."""
    return _FAR - (instant - datetime(1970, 1, 1, tzinfo=UTC))


@dataclasses.dataclass(frozen=True)
class SchedulePlan:
    """What the scheduler does now, and when it looks again."""

    due: datetime | None
    """The scheduled time to create an execution for now, if any."""
    latest: datetime | None
    """The latest scheduled time in ``(since, now]``: ``due``, or the latest one missed."""
    missed: int
    """Scheduled times since the last one that will never run (at least this many
    when ``too_many_missed``)."""
    too_many_missed: bool
    """More than :data:`TOO_MANY_MISSED` times were missed (an outage, a clock jump)."""
    next_time: datetime
    """The first scheduled time after now (and after the last scheduled one)."""
    since: datetime
    """Times after this one were considered."""


def schedule_since(
    last_schedule_time: datetime | None, next_schedule_time: datetime | None, now: datetime
) -> datetime:
    """From when missed times count: the last scheduled time; else the next one the
    scheduler announced (it is owed even if the operator was down when it came); else
    now, for a schedule never seen before, so that adding a schedule runs nothing at once.
    """
    if last_schedule_time is not None:
        return last_schedule_time
    if next_schedule_time is not None:
        return min(next_schedule_time - _MICROSECOND, now)
    return now


def plan_schedule(
    schedule: defn.Schedule,
    *,
    since: datetime,
    now: datetime,
    starting_deadline: timedelta | None,
) -> SchedulePlan:
    """The execution due now (at most one) and the next time, as Kubernetes CronJob does.

    ``since`` is the last time already handled (see :func:`schedule_since`). Of the
    scheduled times in ``(since, now]`` only the most recent runs, and only when it is
    at most ``starting_deadline`` old (None: however old); the others are missed.
    """
    cron = Cron.of(schedule)
    count = 0
    latest: datetime | None = None
    next_time: datetime | None = None
    for instant in cron.times_after(since):
        if instant > now:
            next_time = instant
            break
        count += 1
        latest = instant
        if count > TOO_MANY_MISSED:
            break
    too_many = count > TOO_MANY_MISSED
    if too_many:
        # Do not walk through every missed time: look back from now for the latest.
        latest = next(cron.times_until(now))
        next_time = next(cron.times_after(now))
    assert next_time is not None, "croniter only accepts schedules that fire again"
    due = latest
    if due is not None and starting_deadline is not None and due < now - starting_deadline:
        due = None
    return SchedulePlan(
        due=due,
        latest=latest,
        missed=count - (1 if due is not None else 0),
        too_many_missed=too_many,
        next_time=next_time,
        since=since,
    )


def build_scheduled_execution(
    job: Mapping[str, Any], scheduled: datetime, commit: str | None = None
) -> dict[str, Any]:
    """The OverseerExecution the schedule creates for ``job`` (a body) at ``scheduled``.

    Its execution id is the scheduled time, so its name depends on nothing else: a
    second attempt for the same time (a restart, a double wake) is refused with 409.
    ``commit`` is the repository's ``status.commit`` (whose ``bin/`` is kept, see
    ``docs/repositories.rst``); the job's ``source.commit`` when unknown. Built by the
    one execution builder, :func:`overseer.core.execution_resource.build_execution`.
    """
    return execution_resource.build_execution(
        job,
        names.execution_id(scheduled),
        trigger=execution_.Trigger(type="schedule"),
        commit=commit,
        annotations={SCHEDULED_TIME_ANNOTATION: types.rfc3339(scheduled)},
    )
