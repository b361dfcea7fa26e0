"""Clean up after executions end: their Jobs once the output is archived, later themselves.

The policy is :mod:`overseer.core.retention`; this module applies it to one execution
each time :mod:`overseer.operator.executions` observes it in a terminal phase, and
returns when to look again. Nothing is remembered between calls: after an operator
restart, the resumed observations plan everything again from the status and the archive.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from overseer import errors
from overseer.core import delivery_records, retention
from overseer.crd import base
from overseer.crd import execution as execution_

if TYPE_CHECKING:
    from overseer.operator.context import Environment, Key

log = logging.getLogger(__name__)


async def after_end(
    key: Key,
    body: Mapping[str, Any],
    status: execution_.ExecutionStatus,
    *,
    job: Mapping[str, Any] | None,
    pod: tuple[str | None, bool],
    env: Environment,
) -> datetime | None:
    """Delete what is due for an ended execution; return when something else falls due.

    ``body`` is the execution as read, ``status`` the one just recorded; ``pod`` is the
    name of its newest pod and whether that pod is gone.

    Raises :class:`overseer.errors.KubeError` (waiting): the observation is retried.
    """
    plan = retention.plan(
        status,
        job_present=job is not None,
        output_settled=env.output.settled(key, *pod),
        deliveries_owed=bool(
            delivery_records.plan_from_status(body.get("spec") or {}, base.to_body(status))
        ),
        now=datetime.now(UTC),
        retention=env.settings.retention,
    )
    if plan.delete_execution:
        log.info("execution %s: ended %s ago; deleting it and its output", key, _age(status))
        try:
            await env.output.remove(key)
        except errors.ArchiveError as error:
            log.warning("execution %s: %s; trying again later", key, error.message)
            return datetime.now(UTC) + timedelta(seconds=env.settings.retry_max)
        await env.client.delete(execution_.KIND.kind, key.namespace, key.name)
        return None
    if plan.delete_job and job is not None:
        log.info("execution %s: output archived; deleting Job %s", key, job["metadata"]["name"])
        await env.client.delete_job(key.namespace, job["metadata"]["name"])
    return plan.recheck_at


def _age(status: execution_.ExecutionStatus) -> str:
    if status.completion_time is None:
        return "a while"
    seconds = (datetime.now(UTC) - status.completion_time).total_seconds()
    return execution_.format_duration(seconds)
