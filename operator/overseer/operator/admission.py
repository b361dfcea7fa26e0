"""Concurrency admission: when a new execution's Job is created, and what frees a slot.

The executions sharing a scope (a job's own, or those of all jobs naming one
``concurrency.group``, see :func:`overseer.core.concurrency.scope_of`) are found in a kopf
index of the not-yet-ended executions, so no list is sent to the API server. A *pump*
of a scope reads those executions afresh (and, for one without ``status.jobName``, its
Job), asks :func:`overseer.core.concurrency.plan_admission`, and applies each decision:
start it (:func:`overseer.operator.executions.start_execution`), refuse it (Failed,
``ConcurrencyLimit``), keep it waiting (Pending, ``Queued`` or ``Replacing``), cancel it
(Killed, ``Cancelled``: asked to stop while waiting) or request SIGTERM for a running one
(``spec.signals``). An execution of a deactivated job is refused (Failed, ``JobInactive``)
before any of this: it never waits, and never makes room by stopping another.

A pump runs when an execution without a Job is created or resumed (the start handler
comes here instead of creating its Job at once), when an execution of a scope with
waiting ones ends or is deleted, and when a waiting one is asked to stop. Pumps
of one scope are serialised by a lock held from the first read to the last write, so
two never admit into the same slot. The lock is in this process only: Overseer runs
one operator replica. Nothing is lost in a restart: kopf resumes every execution, and
each resume pumps its scope.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from overseer import errors, kube_client
from overseer.core import backoff, concurrency, execution_job
from overseer.crd import base
from overseer.crd import execution as execution_
from overseer.operator import context, executions

log = logging.getLogger(__name__)

ScopeKey = tuple[str, str]
"""(namespace, scope)."""
IndexEntry = tuple[str, bool]
"""(execution name, waiting: it has no Job yet)."""
ScopeIndex = Mapping[ScopeKey, Iterable[IndexEntry]]


def needs_admission(body: Mapping[str, Any]) -> bool:
    """The execution has not ended and has no Job yet: the admission decides its start."""
    status = body.get("status") or {}
    return status.get("phase") not in execution_.TERMINAL_PHASES and not status.get("jobName")


def index_entry(
    namespace: str | None, name: str, spec: Mapping[str, Any], status: Mapping[str, Any]
) -> dict[ScopeKey, IndexEntry] | None:
    """The index's view of one execution: its scope, name, and whether it waits.

    Ended executions are left out, so the index holds only what can still take a slot.
    """
    if namespace is None or status.get("phase") in execution_.TERMINAL_PHASES:
        return None
    return {(namespace, concurrency.scope_of(spec)): (name, not status.get("jobName"))}


class Admission:
    """This process's coordination of admissions: a lock per scope, and retried pumps."""

    def __init__(self) -> None:
        self._locks: context.KeyedLocks[ScopeKey] = context.KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures: dict[ScopeKey, int] = {}

    async def admit(
        self, body: Mapping[str, Any], env: context.Environment, index: ScopeIndex
    ) -> None:
        """Start (with :func:`executions.start_execution`), refuse or hold back a new (or
        resumed) execution without a Job; decide for its waiting siblings too."""
        namespace = body["metadata"]["namespace"]
        spec = body.get("spec") or {}
        policy = ((spec.get("definition") or {}).get("concurrency") or {}).get("policy")
        if not (spec.get("definition") or {}).get("concurrency") or policy == "allow":
            # No limit to respect: no need to look at the others.
            await _start(body, env)
            return
        if await executions.refuse_if_inactive(body, env):
            return  # before it could queue, or make room by stopping another
        await self.pump((namespace, concurrency.scope_of(spec)), env, index)

    def freed(
        self,
        namespace: str,
        spec: Mapping[str, Any],
        env: context.Environment,
        index: ScopeIndex,
    ) -> None:
        """An execution of this scope ended or was deleted: pump if any waits."""
        key = (namespace, concurrency.scope_of(spec))
        if any(waiting for _, waiting in index.get(key, ())):
            self.kick(key, env, index)

    def noticed(
        self,
        event: str | None,
        namespace: str,
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        *,
        env: context.Environment,
        index: ScopeIndex,
    ) -> None:
        """Any change of an execution: one that ended frees a slot; one that waits and
        was asked to stop is cancelled."""
        if event == "DELETED" or status.get("phase") in execution_.TERMINAL_PHASES:
            self.freed(namespace, spec, env, index)
        elif (
            status.get("reason") in execution_.HELD_BACK
            and not status.get("jobName")
            and concurrency.stop_requested(spec)
        ):
            self.kick((namespace, concurrency.scope_of(spec)), env, index)

    def kick(self, key: ScopeKey, env: context.Environment, index: ScopeIndex) -> None:
        """Pump the scope in the background, again with backoff while the API fails."""

        async def run() -> None:
            try:
                await self.pump(key, env, index)
            except errors.KubeError as error:
                failures = self._failures.get(key, 0)
                self._failures[key] = failures + 1
                delay = backoff.delay(
                    failures, first=env.settings.retry_min, ceiling=env.settings.retry_max
                )
                log.warning("concurrency %s: %s; again in %.0fs", key, error.message, delay)
                await asyncio.sleep(delay)
                self.kick(key, env, index)
            else:
                self._failures.pop(key, None)

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def pump(self, key: ScopeKey, env: context.Environment, index: ScopeIndex) -> None:
        """Decide for every waiting execution of the scope, and apply the decisions."""
        namespace, scope = key
        async with self._locks.hold(key):
            members: list[concurrency.Member] = []
            bodies: dict[str, Mapping[str, Any]] = {}
            for name in sorted({name for name, _ in index.get(key, ())}):
                body = await env.client.get(execution_.KIND.kind, namespace, name)
                if body is None or concurrency.scope_of(body.get("spec") or {}) != scope:
                    continue
                status = body.get("status") or {}
                job_exists = bool(status.get("jobName"))
                if not job_exists and status.get("phase") not in execution_.TERMINAL_PHASES:
                    job = await env.client.get("Job", namespace, execution_job.job_name(name))
                    job_exists = job is not None
                member = concurrency.member_from_body(body, job_exists=job_exists)
                if member is not None:
                    members.append(member)
                    bodies[name] = body
            for decision in concurrency.plan_admission(members, scope):
                await _apply(decision, namespace, bodies, env)


async def _apply(
    decision: concurrency.Decision,
    namespace: str,
    bodies: Mapping[str, Mapping[str, Any]],
    env: context.Environment,
) -> None:
    key = context.Key(namespace, decision.name)
    match decision:
        case concurrency.Start():
            log.info("execution %s: admitted", key)
            await _start(bodies[decision.name], env)
        case concurrency.Refuse(message=message):
            log.info("execution %s: refused: %s", key, message)
            await executions.refuse(key, execution_.CONCURRENCY_LIMIT, message, env)
        case concurrency.Wait(reason=reason, message=message):
            log.info("execution %s: %s: %s", key, reason, message)
            await executions.hold_back(key, reason, message, env)
        case concurrency.Cancel(message=message):
            log.info("execution %s: cancelled: %s", key, message)
            await executions.cancel(key, execution_.CANCELLED, message, env)
        case concurrency.Stop(for_=for_):
            log.info("execution %s: requesting SIGTERM to make room for %s", key, for_)
            await request_signal(env.client, key, bodies[decision.name], datetime.now(UTC))


async def _start(body: Mapping[str, Any], env: context.Environment) -> None:
    """Create the execution's Job and observe it: the start path, past the admission.

    An execution of a deactivated job is refused here, however it was made.
    """
    if not await executions.refuse_if_inactive(body, env):
        await executions.start_execution(body, env)


async def request_signal(
    client: kube_client.KubeClient, key: context.Key, body: Mapping[str, Any], now: datetime
) -> None:
    """Append a SIGTERM request to the execution's ``spec.signals`` (a JSON patch append,
    so a request someone else makes at the same time is kept)."""
    request = base.to_body(concurrency.signal_request(now))
    operations: list[dict[str, Any]]
    if (body.get("spec") or {}).get("signals") is None:
        operations = [{"op": "add", "path": "/spec/signals", "value": [request]}]
    else:
        operations = [{"op": "add", "path": "/spec/signals/-", "value": request}]
    await client.patch_json(execution_.KIND.kind, key.namespace, key.name, operations)
