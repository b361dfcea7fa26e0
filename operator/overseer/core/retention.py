"""What to clean up after an execution ends: its Job (and pod), and later the execution itself.

A finished execution keeps its batch/v1 Job, and so its pod and ``kubectl logs``, for
``finished_job_ttl`` after it ended, and never before its log has been archived to its
end (the archive is what outlives the pod). The execution, and its archived output, is
deleted ``execution_ttl`` after it ended; ``None`` keeps executions until someone deletes
them, which is the default: history is the user's data.

Pure: :func:`plan` says what is due now and when to look again; the operator does it.
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
    if retention.execution_ttl is not None:
        expires = ended + retention.execution_ttl
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
