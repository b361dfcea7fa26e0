"""Label settled executions, so that they leave the operator's watch.

:meth:`Settler.notice` sees every event of the operator's execution watch (the listing
at a start too). An execution that is settled and not labelled yet
(:func:`overseer.core.settlement.plan_label`) is queued; a few workers label the queued
ones, one merge patch each, through the write gate behind the syncs' and the
scheduler's writes (:data:`overseer.operator.write_gate.SETTLE`): after an upgrade, the
first start finds thousands of settled executions without the label, and labels them
at the pace the gate allows. Only the patch is queued (the ``resourceVersion`` it was
judged at), never the body.

The patch is refused (409) when the execution changed since it was judged: the watch
brings the newer state, judged again. A deposed leader labels nothing (the fence
refuses the write); the next leader lists the unlabelled ones. Once labelled, the API
server shows the execution to the watch as DELETED: :func:`left_watch` tells it apart
from a deletion, for the log; every handler treats both alike (it forgets the
execution, cancels nothing that a settled execution still has).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from overseer import errors, kube_client
from overseer.core import backoff, settlement
from overseer.crd import execution as execution_
from overseer.operator import context, metrics, write_gate

log = logging.getLogger(__name__)

WORKERS = 4
"""Label writes in flight at most (each also holds a slot of the write gate)."""


def left_watch(body: Mapping[str, Any], *, deleted: bool) -> bool:
    """A DELETED event that only says the execution was labelled settled."""
    return deleted and settlement.is_labelled(body)


class Settler:
    """The queue of settled executions to label, and its workers."""

    def __init__(
        self,
        client: kube_client.KubeClient,
        gate: write_gate.WriteGate,
        *,
        retry_min: float,
        retry_max: float,
    ) -> None:
        self._client = client
        self._gate = gate
        self._retry = (retry_min, retry_max)
        self._pending: dict[context.Key, dict[str, Any]] = {}
        """Execution -> its label patch, oldest first."""
        self._failures: dict[context.Key, int] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def pending(self) -> int:
        """Executions waiting for their label."""
        return len(self._pending)

    def notice(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """An execution as a watch event shows it: queue its label if it is settled."""
        metadata = body.get("metadata") or {}
        key = context.Key(str(metadata.get("namespace")), str(metadata.get("name")))
        patch = None if deleted else settlement.plan_label(body)
        if patch is None:
            self._pending.pop(key, None)
            if left_watch(body, deleted=deleted):
                log.debug("execution %s: settled, out of the watch", key)
            return
        self._pending[key] = patch
        self._start()

    def _start(self) -> None:
        while len(self._workers) < min(WORKERS, len(self._pending)):
            task = asyncio.create_task(self._work(), name="settled labels")
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)  # one cancelled before it ran

    async def _work(self) -> None:
        try:
            while self._pending:
                async with self._gate.slot(write_gate.SETTLE):
                    if not self._pending:
                        return
                    key = next(iter(self._pending))  # judged by the newest event
                    await self._label(key, self._pending.pop(key))
        finally:
            # Out of the workers in the same step as it finds nothing queued: a done
            # callback runs a moment later, and an event queued in between would find
            # this worker still counted and start none.
            self._workers.discard(asyncio.current_task())

    async def _label(self, key: context.Key, patch: dict[str, Any]) -> None:
        try:
            await self._client.patch_merge(execution_.KIND.kind, key.namespace, key.name, patch)
        except errors.NotLeaderError:
            return  # the leader labels it
        except errors.KubeError as error:
            if error.status in (404, 409):
                self._failures.pop(key, None)
                return  # gone, or changed since: the watch shows the newer state
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            delay = backoff.delay(failures, first=self._retry[0], ceiling=self._retry[1])
            log.warning("execution %s: not labelled settled: %s", key, error.message)
            self._later(delay, key, patch)
            return
        self._failures.pop(key, None)
        log.info("execution %s: settled; it leaves the operator's watch", key)
        metrics.settled()

    def _later(self, delay: float, key: context.Key, patch: dict[str, Any]) -> None:
        def again() -> None:
            self._timers.discard(timer)
            self._pending.setdefault(key, patch)
            self._start()

        timer = asyncio.get_running_loop().call_later(delay, again)
        self._timers.add(timer)

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        workers = list(self._workers)
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
