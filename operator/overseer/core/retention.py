"""What to clean up after an execution ends: its Job (and pod), and later the execution itself.

A finished execution keeps its batch/v1 Job, and so its pod and ``kubectl logs``, for
``finished_job_ttl`` after it ended, and never before its log has been archived to its
end (the archive is what outlives the pod). The execution, and its archived output, is
deleted ``execution_ttl`` after it ended; ``None`` keeps executions until someone deletes
them, which is the default: history is the user's data.

Pure: :func:`plan` says what is due now and when to look again; the operator does it.
:func:`expires_at` and :func:`next_sweep` pace the sweep of settled executions, which
applies the execution TTL across restarts (:mod:`overseer.operator.expiry`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from overseer.crd import execution as execution_


@dataclasses.dataclass(frozen=True)
class Retention:
    """How long finished executions keep their Job, and are kept themselves."""

    finished_job_ttl: timedelta = timedelta(hours=1)
    execution_ttl: timedelta | None = None


OWED_RECHECK = timedelta(minutes=1)
"""How often an expired execution that still owes webhook deliveries is looked at again."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What is due for one execution at one moment."""

    delete_job: bool = False
    delete_execution: bool = False
    recheck_at: datetime | None = None
    """When something becomes due that is not due yet; None when nothing will."""


NOTHING = Plan()


def plan(
    status: execution_.ExecutionStatus,
    *,
    job_present: bool,
    output_settled: bool,
    deliveries_owed: bool = False,
    now: datetime,
    retention: Retention,
) -> Plan:
    """What to delete now, and when to look again.

    ``output_settled``: the log needs no more reading (archived to its end, or there is
    no pod left to read it from). Until then the Job stays, whatever its age: the
    follower's end brings another observation, so no re-check is planned for it.
    ``deliveries_owed``: webhook deliveries are still owed (neither delivered nor given
    up); an expired execution waits for them, since they live in its status.
    """
    ended = status.completion_time
    if status.phase not in execution_.TERMINAL_PHASES or ended is None:
        return NOTHING
    due: list[datetime] = []
    delete_execution = False
    if (expires := expires_at(status, retention)) is not None:
        delete_execution = now >= expires and not deliveries_owed
        due.append(max(expires, now + OWED_RECHECK) if deliveries_owed else expires)
    if delete_execution:
        # Owner references take the Job, its pods and the Secret along.
        return Plan(delete_execution=True)
    delete_job = False
    if job_present and output_settled:
        job_expires = ended + retention.finished_job_ttl
        delete_job = now >= job_expires
        if not delete_job:
            due.append(job_expires)
    future = [when for when in due if when > now]
    return Plan(delete_job=delete_job, recheck_at=min(future) if future else None)


def expires_at(status: execution_.ExecutionStatus, retention: Retention) -> datetime | None:
    """When the execution falls due for deletion; None when it never does (no TTL) or
    has not ended."""
    ended = status.completion_time
    if retention.execution_ttl is None or ended is None:
        return None
    if status.phase not in execution_.TERMINAL_PHASES:
        return None
    return ended + retention.execution_ttl


SWEEP_MIN_GAP = timedelta(seconds=60)
SWEEP_MAX_GAP = timedelta(hours=1)


def sweep_gap(execution_ttl: timedelta) -> timedelta:
    """The least time between two sweeps, which is also how late a sweep may delete an
    execution: 1/60 of the TTL, within [:data:`SWEEP_MIN_GAP`, :data:`SWEEP_MAX_GAP`]
    (60 s up to a TTL of 1 h, 1 h from a TTL of 60 h). It bounds the sweeps to 60 per TTL,
    or one an hour."""
    return min(SWEEP_MAX_GAP, max(SWEEP_MIN_GAP, execution_ttl / 60))


def next_sweep(earliest: datetime | None, *, swept: datetime, execution_ttl: timedelta) -> datetime:
    """When to sweep again after a sweep at ``swept`` whose earliest expiry still ahead
    was ``earliest`` (None: none): then, but not sooner than :func:`sweep_gap` after
    ``swept``, and never later than :data:`SWEEP_MAX_GAP` after it."""
    latest = swept + SWEEP_MAX_GAP
    if earliest is None:
        return latest
    return min(latest, max(earliest, swept + sweep_gap(execution_ttl)))
