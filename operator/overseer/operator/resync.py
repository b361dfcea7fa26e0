"""The periodic resync: every execution not yet settled is observed again at an interval.

Reactions run on watch events. A watch can miss one: the API server was down and
forgot the versions in between (kopf lists again, and an object deleted meanwhile,
a pod most often, never shows as DELETED), or a connection went half-open until its
timeout. An execution whose pod vanished in such a gap would stay ``Running`` with no
event left to wake it. So :class:`Resync` keeps, from the executions' own watch
events (:meth:`notice`), the executions that have not ended or whose output is still
being archived, and observes each again every ``interval``
(:func:`overseer.operator.executions.observe_execution`, idempotent: an observation
that finds nothing new writes nothing). Only those: an ended execution costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from overseer import errors
from overseer.core import settlement
from overseer.operator import context, executions

log = logging.getLogger(__name__)

Refresh = Callable[[context.Key], Awaitable[None]]
"""Read an execution, its Job and pods from the API server into the watch cache."""


def unsettled(body: Mapping[str, Any]) -> bool:
    """The execution has not ended, or its output is still being archived."""
    return not settlement.ended_and_archived(body.get("status"))


class Resync:
    """Observe the unsettled executions again every ``interval`` seconds."""

    def __init__(
        self, environment: Callable[[], context.Environment], interval: float, *, refresh: Refresh
    ) -> None:
        self._environment = environment
        self._interval = interval
        self._refresh = refresh
        self._keys: set[context.Key] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def keys(self) -> frozenset[context.Key]:
        """The executions the next round observes."""
        return frozenset(self._keys)

    def notice(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """An execution as a watch event shows it; starts the rounds on first use."""
        metadata = body.get("metadata") or {}
        key = context.Key(str(metadata.get("namespace")), str(metadata.get("name")))
        if not deleted and unsettled(body):
            self._keys.add(key)
        else:
            self._keys.discard(key)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="resync")

    async def round(self) -> int:
        """Observe each unsettled execution once; return how many were observed."""
        env = self._environment()
        keys = list(self._keys)
        for key in keys:
            try:
                await self._refresh(key)
            except errors.KubeError as error:  # observed as the watches showed it, then
                log.warning("resync: execution %s not read again: %s", key, error.message)
            # observe_execution logs and retries an API failure itself.
            await executions.observe_execution(key, env)
        return len(keys)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                count = await self.round()
            except Exception:  # a bug: say so, and keep the rounds going
                log.exception("resync: a round failed")
            else:
                log.debug("resync: observed %d execution(s) again", count)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
