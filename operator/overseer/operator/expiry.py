"""``OVERSEER_EXECUTION_TTL`` across restarts: a sweep of the settled executions.

An ended execution is deleted at its TTL by the observation that planned it
(:mod:`overseer.operator.collect`), a timer of this process. A settled execution is out
of the operator's watch (:mod:`overseer.core.settlement`): after a restart, or a change
of leader, nothing observes it again once its Job is gone, and the timer died with the
process that set it. So, while it leads and only when a TTL is set, the operator lists
the settled executions of its namespaces (label ``overseer.dev/settled=true``, a page at
a time, each body dropped once judged) and observes each that has expired
(:func:`overseer.operator.executions.observe_execution`, which deletes it and its output,
or waits for what it still owes).

It remembers one thing: the earliest expiry still ahead among the executions that ended
before it started (those that ended since were observed ending by this process, which
planned their deletion), and sweeps again then, paced by
:func:`overseer.core.retention.next_sweep`: never sooner than
:func:`overseer.core.retention.sweep_gap` after a sweep (60 s, or 1/60 of the TTL up to
1 h), never later than 1 h. An execution is so deleted at most that gap (plus a sweep's
duration) past its TTL. A listing that fails is tried again with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic

from overseer import errors, kube_client
from overseer.core import backoff, retention, settlement
from overseer.crd import execution as execution_
from overseer.operator import context, executions

log = logging.getLogger(__name__)

SETTLED = {settlement.SETTLED_LABEL: settlement.SETTLED}


class ExpirySweep:
    """Delete the settled executions past their TTL, sweeping at the earliest expiry."""

    def __init__(
        self, client: kube_client.KubeClient, environment: Callable[[], context.Environment]
    ) -> None:
        self._client = client
        self._environment = environment
        self._started = datetime.now(UTC)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the sweeps (in the running event loop) if an execution TTL is set."""
        if self._environment().settings.retention.execution_ttl is not None:
            self._task = asyncio.create_task(self._run(), name="execution TTL sweep")

    async def sweep(self) -> datetime | None:
        """Observe every expired settled execution once; return the earliest expiry still
        ahead among those that ended before this sweeper started (None: none)."""
        env = self._environment()
        policy = env.settings.retention
        if policy.execution_ttl is None:
            return None
        now = datetime.now(UTC)
        due: list[context.Key] = []
        earliest: datetime | None = None
        for scope in env.settings.namespaces or [kube_client.ALL_NAMESPACES]:
            async for body in self._client.list(execution_.KIND.kind, scope, SETTLED):
                expires = _expires_at(body, policy)
                if expires is None:
                    continue
                if expires <= now:
                    metadata = body["metadata"]
                    due.append(context.Key(metadata["namespace"], metadata["name"]))
                elif expires - policy.execution_ttl < self._started:  # ended before
                    earliest = expires if earliest is None else min(earliest, expires)
        for key in due:
            await executions.observe_execution(key, env)  # logs and retries failures itself
        if due:
            log.info("execution TTL sweep: %d expired settled execution(s) observed", len(due))
        return earliest

    async def _run(self) -> None:
        ttl = self._environment().settings.retention.execution_ttl or timedelta()
        settings = self._environment().settings
        failures = 0
        while True:
            swept = datetime.now(UTC)
            try:
                earliest = await self.sweep()
            except Exception as error:  # a failing list (or a bug) never ends the sweeps
                if isinstance(error, errors.KubeError):
                    log.warning("execution TTL sweep: %s", error.message)
                else:
                    log.exception("execution TTL sweep failed")
                delay = backoff.delay(
                    failures, first=settings.retry_min, ceiling=settings.retry_max
                )
                failures += 1
                log.info("execution TTL sweep: again in %gs", delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            then = retention.next_sweep(earliest, swept=swept, execution_ttl=ttl)
            log.debug("execution TTL sweep: next at %s", then.isoformat())
            await asyncio.sleep(max(0.0, (then - datetime.now(UTC)).total_seconds()))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _expires_at(body: Mapping[str, Any], policy: retention.Retention) -> datetime | None:
    try:
        status = execution_.ExecutionStatus.model_validate(body.get("status") or {})
    except pydantic.ValidationError:
        return None  # the operator rewrites such a status when it observes it
    return retention.expires_at(status, policy)
