"""The scheduler: creates the OverseerExecutions of active, scheduled jobs on time.

One asyncio task per OverseerJob that is active and has a ``schedule``. It sleeps until
the job's next scheduled time (or until the job's schedule or ``active`` changes), asks
:func:`overseer.core.schedule.plan_schedule` what is due, creates that execution, and
records ``lastScheduleTime`` and ``nextScheduleTime`` in the job's status.

Not a kopf timer or daemon: both put kopf's finalizer on every OverseerJob, so deleting
a repository (whose jobs the garbage collector removes) would wait for the operator.
The operator's own OverseerJob watch (:mod:`overseer.operator.job_watch`, no kopf
handler, no finalizer) feeds :meth:`Scheduler.observe`; after a restart it lists every
job again and each task starts from the job's status.

A scheduled execution's id is its scheduled time, and its name is derived from the
id: creating it twice (a restart between the creation and the status write, two wakes)
is refused with 409 and counts as done. A job that is deactivated, loses its schedule
or is deleted (removed from git) gets no new execution; its ``nextScheduleTime`` is
removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic

from overseer import errors, kube_client
from overseer.core import backoff, schedule
from overseer.crd import job as job_crd
from overseer.crd import repository as repository_crd
from overseer.crd import types
from overseer.operator import events, write_gate
from overseer.operator.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

JobKey = tuple[str, str]
"""(namespace, OverseerJob name)."""

# The wall clock and the event loop's clock may disagree by a little: wake a bit late
# rather than a bit early (which would only mean one more look).
_LATE = 0.05


@dataclasses.dataclass
class _Entry:
    """What the task of one job knows; ``body`` is replaced by every watch event."""

    body: dict[str, Any]
    wake: asyncio.Event
    last: datetime | None
    """The latest scheduled time handled (from the status, then from this task)."""
    announced: datetime | None
    """The next time announced in the status (idem)."""
    written: tuple[datetime | None, datetime | None] | None = None
    task: asyncio.Task[None] | None = None


def _trigger(body: Mapping[str, Any]) -> Any:
    """What wakes a job's task when it changes: its schedule. (Other changes, our own
    status writes among them, only replace the body the next execution is built from.)"""
    return (body.get("spec") or {}).get("definition", {}).get("schedule")


def _kept(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the job's body, without its managedFields (never read here, and most of
    the body's size: 2,000 scheduled jobs held them all)."""
    kept = {k: copy.deepcopy(v) for k, v in body.items() if k != "metadata"}
    metadata = body.get("metadata") or {}
    kept["metadata"] = {k: copy.deepcopy(v) for k, v in metadata.items() if k != "managedFields"}
    return kept


def _wanted(body: Mapping[str, Any]) -> bool:
    spec = body.get("spec") or {}
    return bool(spec.get("active", True)) and bool((spec.get("definition") or {}).get("schedule"))


class Scheduler:
    """The tasks of all scheduled jobs of this operator."""

    def __init__(
        self,
        client: kube_client.KubeClient,
        settings: Settings,
        post_event: events.EventPoster,
        clock: Clock = lambda: datetime.now(UTC),
        gate: write_gate.WriteGate | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._post_event = post_event
        self._clock = clock
        # The status writes (next run) wait behind a repository sync's writes.
        self._gate = gate or write_gate.WriteGate(settings.sync_write_concurrency)
        self._entries: dict[JobKey, _Entry] = {}
        self._clearing: set[JobKey] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def observe(self, body: Mapping[str, Any], *, deleted: bool) -> None:
        """The latest state of an OverseerJob (from its watch): start, wake or stop its task."""
        meta = body["metadata"]
        key: JobKey = (meta["namespace"], meta["name"])
        entry = self._entries.get(key)
        if deleted or not _wanted(body):
            if entry is not None:
                log.info("schedule of %s/%s: stopped", *key)
                self._stop(key)
            if not deleted and (body.get("status") or {}).get("nextScheduleTime"):
                self._clear_next(key)
            return
        if entry is None:
            status = self._status(body)
            entry = _Entry(
                body=_kept(body),
                wake=asyncio.Event(),
                last=status.last_schedule_time,
                announced=status.next_schedule_time,
                # What the status says is written: a restart rewrites none of 2,000 jobs.
                written=(status.last_schedule_time, status.next_schedule_time),
            )
            self._entries[key] = entry
            entry.task = asyncio.ensure_future(self._run(key, entry))
            return
        changed = _trigger(entry.body) != _trigger(body)
        entry.body = _kept(body)
        if changed:
            entry.wake.set()

    def _stop(self, key: JobKey) -> None:
        entry = self._entries.pop(key)
        if entry.task is not None:
            entry.task.cancel()

    def _clear_next(self, key: JobKey) -> None:
        """Remove ``nextScheduleTime`` from a job that will not run by itself."""
        if key in self._clearing:
            return
        self._clearing.add(key)

        async def clear() -> None:
            try:
                async with self._gate.slot(write_gate.ANNOUNCE):
                    await self._client.patch_status(
                        job_crd.KIND.kind, *key, {"nextScheduleTime": None}
                    )
            except errors.KubeError as error:
                if error.status != 404:
                    log.warning("schedule of %s/%s: %s", *key, error.message)
            finally:
                self._clearing.discard(key)

        self._spawn(clear())

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for key in list(self._entries):
            self._stop(key)
        for task in list(self._tasks):
            task.cancel()

    @staticmethod
    def _status(body: Mapping[str, Any]) -> job_crd.JobStatus:
        try:
            return job_crd.JobStatus.model_validate(body.get("status") or {})
        except pydantic.ValidationError:
            return job_crd.JobStatus()

    async def _run(self, key: JobKey, entry: _Entry) -> None:
        failures = 0
        while True:
            entry.wake.clear()
            try:
                delay = await self._tick(key, entry)
                failures = 0
            except errors.KubeError as error:
                delay = backoff.delay(
                    failures, first=self._settings.retry_min, ceiling=self._settings.retry_max
                )
                failures += 1
                log.warning("schedule of %s/%s: %s; again in %.0fs", *key, error.message, delay)
            except Exception:
                # A bug must not end the schedule silently for good.
                log.exception("schedule of %s/%s failed", *key)
                delay = self._settings.retry_max
            with contextlib.suppress(TimeoutError):  # the normal way to wake up
                await asyncio.wait_for(entry.wake.wait(), timeout=delay)

    async def _tick(self, key: JobKey, entry: _Entry) -> float:
        """Create what is due; return the seconds until the next look."""
        body = entry.body
        try:
            spec = job_crd.JobSpec.model_validate(body["spec"])
        except pydantic.ValidationError as error:
            log.error("schedule of %s/%s: the spec is invalid: %s", *key, error)
            return self._settings.retry_max
        definition_schedule = spec.definition.schedule
        assert definition_schedule is not None, "only scheduled jobs have a task"
        now = self._clock()
        deadline = self._settings.schedule_starting_deadline
        plan = schedule.plan_schedule(
            definition_schedule,
            since=schedule.schedule_since(entry.last, entry.announced, now),
            now=now,
            starting_deadline=None if deadline is None else timedelta(seconds=deadline),
        )
        if plan.due is not None:
            await self._create(key, body, plan.due)
        if plan.too_many_missed:
            message = (
                f"more than {schedule.TOO_MANY_MISSED} scheduled times were missed "
                f"since {plan.since.isoformat()} (operator down, or the clock moved); "
                "only the latest within the starting deadline runs"
            )
            log.warning("schedule of %s/%s: %s", *key, message)
            self._post_event(body, "Warning", "TooManyMissedTimes", message)
        elif plan.missed:
            log.info("schedule of %s/%s: %d scheduled time(s) missed", *key, plan.missed)
        entry.last = plan.latest or entry.last
        entry.announced = plan.next_time
        if entry.written != (entry.last, entry.announced):
            await self._write_status(key, entry, recorded=plan.due is not None)
        return max((plan.next_time - self._clock()).total_seconds(), 0.0) + _LATE

    async def _create(self, key: JobKey, body: Mapping[str, Any], due: datetime) -> None:
        # The repository's commit, not the job's: its bin/ is the one surely kept.
        repository = await self._client.get(
            repository_crd.KIND.kind, key[0], str(body["spec"]["source"]["repository"])
        )
        commit = ((repository or {}).get("status") or {}).get("commit")
        execution = schedule.build_scheduled_execution(body, due, commit)
        name = execution["metadata"]["name"]
        try:
            created = await self._client.create(execution)
        except errors.KubeError as error:
            if not error.stalled:
                raise
            # It will never be accepted: say so, and do not try this time again.
            log.error("schedule of %s/%s: %s", *key, error.message)
            self._post_event(body, "Warning", "ScheduleFailed", error.message)
            return
        if created is None:
            log.info("schedule of %s/%s: %s exists already", *key, name)
        else:
            log.info("schedule of %s/%s: created %s for %s", *key, name, due.isoformat())

    async def _write_status(self, key: JobKey, entry: _Entry, *, recorded: bool) -> None:
        """Write the last and next times. One that only announces the next run waits its
        turn behind a repository sync's writes (the gate); one that ``recorded`` an
        execution just created goes at once, so the next tick is not held up."""
        patch: dict[str, Any] = {
            "nextScheduleTime": _rfc3339(entry.announced),
            "lastScheduleTime": _rfc3339(entry.last),
        }
        body = {k: v for k, v in patch.items() if v is not None}
        try:
            if recorded:
                await self._client.patch_status(job_crd.KIND.kind, *key, body)
            else:
                async with self._gate.slot(write_gate.ANNOUNCE):
                    await self._client.patch_status(job_crd.KIND.kind, *key, body)
        except errors.KubeError as error:
            if error.status != 404:
                raise
        entry.written = (entry.last, entry.announced)


def _rfc3339(when: datetime | None) -> str | None:
    return None if when is None else types.rfc3339(when)
